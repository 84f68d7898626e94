package build

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"go.opentelemetry.io/otel/attribute"
	"go.podman.io/storage"

	"github.com/berth-containers/berth/engine/image"
	"github.com/berth-containers/berth/engine/tracing"
)

var nowUTC = func() time.Time { return time.Now().UTC() }

// buildStage runs stage i's FROM and instructions.
func (b *builder) buildStage(ctx context.Context, i int) (*state, error) {
	st := b.df.stages[i]
	steps := len(st.Commands) + 1
	base, err := b.expandFrom(st.BaseName)
	if err != nil {
		return nil, fmt.Errorf("FROM %s: %w", st.BaseName, err)
	}
	b.stepf(i, fmt.Sprintf("1/%d", steps), "%s", st.SourceCode)
	if err := b.checkFromPlatform(st.Platform); err != nil {
		return nil, fmt.Errorf("FROM --platform=%s %s: %w", st.Platform, st.BaseName, err)
	}
	s, err := b.from(ctx, i, base)
	if err != nil {
		return nil, err
	}
	// The base's ONBUILD triggers run first, and are not inherited.
	triggers := s.cfg.Config.OnBuild
	s.cfg.Config.OnBuild = nil
	for _, t := range triggers {
		cmd, err := parseInstruction(t)
		if err != nil {
			return nil, fmt.Errorf("ONBUILD %s of the base image: %w", t, err)
		}
		b.stepf(i, "", "ONBUILD %s", t)
		if err := b.step(ctx, i, s, cmd); err != nil {
			return nil, err
		}
	}
	for n, cmd := range st.Commands {
		b.stepf(i, fmt.Sprintf("%d/%d", n+2, steps), "%s", stepText(cmd))
		if err := b.step(ctx, i, s, cmd); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// stepText is an instruction as the user wrote it, on one line.
func stepText(cmd instructions.Command) string {
	if s, ok := cmd.(fmt.Stringer); ok {
		return strings.Join(strings.Fields(strings.ReplaceAll(s.String(), "\\\n", " ")), " ")
	}
	return cmd.Name()
}

// from makes the state a stage starts with: an earlier stage's, an empty
// one for scratch, or an image's (pulled when missing or asked).
func (b *builder) from(ctx context.Context, i int, base string) (*state, error) {
	if d, ok := b.df.stageIndex(base, i); ok {
		s, err := b.stageState(ctx, d)
		if err != nil {
			return nil, err
		}
		return s.clone(), nil
	}
	if base == "scratch" {
		cfg := scratch()
		return &state{cfg: cfg, key: "scratch"}, nil
	}
	img, err := b.baseImage(ctx, base)
	if err != nil {
		return nil, err
	}
	cfg, x, err := image.ConfigExtras(b.store, img.ID)
	if err != nil {
		return nil, err
	}
	s := &state{cfg: cfg, extras: x, key: "image " + img.ID}
	parent := ""
	for _, d := range cfg.RootFS.DiffIDs {
		id := image.ChainID(parent, d)
		l, err := b.store.Layer(id)
		if err != nil {
			return nil, fmt.Errorf("FROM %s: layer %s: %w", base, d, err)
		}
		s.layers = append(s.layers, image.Layer{ChainID: id, DiffID: d, Size: l.UncompressedSize})
		parent = id
	}
	return s, nil
}

// baseImage finds a FROM's image in the store, pulling it when missing or
// when --pull asks.
func (b *builder) baseImage(ctx context.Context, ref string) (*storage.Image, error) {
	if !b.o.Pull {
		if img, err := image.Lookup(b.store, ref); err == nil {
			return img, nil
		}
	}
	if b.o.Registry == nil {
		return nil, fmt.Errorf("FROM %s: image not found", ref)
	}
	var plat *v1.Platform
	if b.o.Platform != "" {
		var err error
		if plat, err = image.ParsePlatform(b.o.Platform); err != nil {
			return nil, err
		}
	}
	img, err := image.Pull(ctx, b.store, b.o.Registry, ref, image.PullOptions{Platform: plat})
	if err != nil {
		if stored, lerr := image.Lookup(b.store, ref); lerr == nil && b.o.Pull {
			b.warn(fmt.Sprintf("FROM %s: pull failed, using the stored image: %v", ref, image.Explain(err)))
			return stored, nil
		}
		return nil, fmt.Errorf("FROM %s: %w", ref, image.Explain(err))
	}
	return img, nil
}

// step runs one instruction on s.
func (b *builder) step(ctx context.Context, stage int, s *state, cmd instructions.Command) (err error) {
	ctx, span := tracing.Start(ctx, "build step", attribute.String("build.instruction", cmd.Name()), attribute.Int("build.stage", stage))
	defer func() { tracing.End(span, err) }()
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	expand := s.expander(b.df.escape)
	if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if err := e.Expand(expand); err != nil {
			return stepError(cmd, err)
		}
	}
	if e, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		if err := e.ExpandRaw(expand); err != nil {
			return stepError(cmd, err)
		}
	}
	switch c := cmd.(type) {
	case *instructions.RunCommand:
		err = b.run(ctx, stage, s, c)
	case *instructions.CopyCommand:
		err = b.copyCommand(ctx, stage, s, c)
	case *instructions.AddCommand:
		err = b.addCommand(ctx, s, c)
	case *instructions.ArgCommand:
		b.arg(s, c)
	default:
		err = applyMeta(s, cmd)
	}
	if err != nil {
		return stepError(cmd, err)
	}
	return nil
}

// stepError names the instruction and its line.
func stepError(cmd instructions.Command, err error) error {
	var re *RunError
	if errors.As(err, &re) || errors.Is(err, context.Canceled) {
		return err
	}
	line := 0
	if loc := cmd.Location(); len(loc) > 0 {
		line = loc[0].Start.Line
	}
	return fmt.Errorf("%s (line %d): %w", stepText(cmd), line, err)
}

// arg declares build arguments in the stage: --build-arg's value, else the
// default, else the value of a meta ARG of the same name.
func (b *builder) arg(s *state, c *instructions.ArgCommand) {
	if s.args == nil {
		s.args = map[string]*string{}
	}
	var parts, names []string
	for _, kv := range c.Args {
		var v *string
		if given, ok := b.o.BuildArgs[kv.Key]; ok {
			v = &given
			b.markUsed(kv.Key)
		} else if kv.Value != nil {
			v = kv.Value
		} else if m, ok := b.metaArgs[kv.Key]; ok {
			v = m
		}
		if _, declared := s.args[kv.Key]; !declared {
			s.argOrder = append(s.argOrder, kv.Key)
		}
		s.args[kv.Key] = v
		val := "<unset>"
		if v != nil {
			val = "=" + *v
		}
		parts = append(parts, kv.Key+val)
		names = append(names, kv.String())
	}
	// The values are part of the key: RUN steps see them.
	s.advance("ARG " + strings.Join(parts, " "))
	s.history("ARG "+strings.Join(names, " "), true)
}

// checkFromPlatform refuses a FROM --platform (after substitution) other
// than the host's: berth builds for the platform it runs on.
func (b *builder) checkFromPlatform(p string) error {
	if p == "" {
		return nil
	}
	expanded, err := b.expandFrom(p)
	if err != nil {
		return err
	}
	return checkPlatform(expanded)
}
