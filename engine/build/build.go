package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"go.podman.io/storage"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/image"
	"github.com/berth-containers/berth/engine/registry"
)

// Options say what to build and how.
type Options struct {
	Context *Context
	// Dockerfile is its text; DockerfileName names it in messages.
	Dockerfile     []byte
	DockerfileName string
	// Tags are REPOSITORY[:TAG]s for the image.
	Tags      []string
	BuildArgs map[string]string
	// Target is the stage to build; "" is the last.
	Target  string
	NoCache bool
	// Pull fetches base images even when they are stored.
	Pull   bool
	Labels map[string]string
	// Platform is os/arch[/variant]; only the host's can run RUN steps.
	Platform string
	// Network is RUN's network: "" (the default network), "none", "host"
	// or a network's name; NetConfDir and NetRunDir are the network
	// manager's directories.
	Network               string
	NetConfDir, NetRunDir string
	AddHosts              []string
	// Secrets map secret ids to files, for RUN --mount=type=secret.
	Secrets  map[string]string
	Runtime  container.Runtime
	Registry *registry.Client
	// CacheFrom and CacheTo are repositories of a registry cache: steps
	// missing from the store's cache are looked for in CacheFrom, and
	// every layer step is pushed to CacheTo.
	CacheFrom, CacheTo []string
	// Out gets the step lines and what RUN steps print; nil: nothing.
	Out io.Writer
	// Rootless runs RUN steps as a rootless engine's containers.
	Rootless bool
}

// Result is a finished build.
type Result struct {
	Image *storage.Image
	// Warnings are said to the user besides the steps.
	Warnings []string
}

// proxyArgs may be passed with --build-arg without an ARG, as docker's
// predefined args; they stay out of the image's history.
var proxyArgs = []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}

// Build runs the Dockerfile and stores the image of its target stage.
func Build(ctx context.Context, s storage.Store, o Options) (*Result, error) {
	name := o.DockerfileName
	if name == "" {
		name = "Dockerfile"
	}
	df, err := parseDockerfile(name, o.Dockerfile)
	if err != nil {
		return nil, err
	}
	names, err := image.Canonicals(o.Tags)
	if err != nil {
		return nil, err
	}
	if err := checkPlatform(o.Platform); err != nil {
		return nil, err
	}
	if err := checkCacheRepos(o); err != nil {
		return nil, err
	}
	b := &builder{store: s, o: o, df: df, out: newLineWriter(o.Out), used: map[string]bool{}}
	b.warn(df.warnings...)
	if err := b.resolveMetaArgs(); err != nil {
		return nil, err
	}
	target := len(df.stages) - 1
	if o.Target != "" {
		i, ok := df.stageIndex(o.Target, len(df.stages))
		if !ok {
			return nil, fmt.Errorf("target stage %q could not be found", o.Target)
		}
		target = i
	}
	needed, err := b.plan(target)
	if err != nil {
		return nil, err
	}
	b.results = make([]*stageResult, len(df.stages))
	for _, i := range needed {
		b.results[i] = &stageResult{done: make(chan struct{})}
	}
	b.multi = len(needed) > 1
	defer func() {
		for _, w := range b.mounted {
			w.discard()
		}
	}()
	// Every needed stage starts at once; each waits for the stages it
	// uses when it needs them, so independent stages run in parallel.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, i := range needed {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := b.results[i]
			r.state, r.err = b.buildStage(ctx, i)
			if r.err != nil {
				cancel(r.err)
			}
			close(r.done)
		}()
	}
	wg.Wait()
	if err := b.results[target].err; err != nil {
		return nil, err
	}
	for _, i := range needed {
		if err := b.results[i].err; err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	final := b.results[target].state
	if err := b.flushDirs(ctx, final); err != nil {
		return nil, err
	}
	cfg := final.cfg.DeepCopy()
	if len(o.Labels) > 0 {
		if cfg.Config.Labels == nil {
			cfg.Config.Labels = map[string]string{}
		}
		maps.Copy(cfg.Config.Labels, o.Labels)
	}
	cfg.Created = v1.Time{Time: time.Now().UTC()}
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = final.diffIDs()
	b.stepf(target, "", "COMMIT %s", strings.Join(o.Tags, " "))
	img, err := b.commit(ctx, final, cfg, names)
	if err != nil {
		return nil, err
	}
	b.printf("--> %s\n", img.ID[:12])
	for _, n := range names {
		b.printf("Successfully tagged %s\n", n)
	}
	var unused []string
	for k := range o.BuildArgs {
		if !b.used[k] && !slices.Contains(proxyArgs, k) {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		slices.Sort(unused)
		b.warn(fmt.Sprintf("one or more build-args %v were not consumed", unused))
	}
	return &Result{Image: img, Warnings: b.warnings}, nil
}

// commit stores the image, or finds the one an identical build made (the
// same steps and labels), so that a build from cache is the same image.
func (b *builder) commit(ctx context.Context, final *state, cfg *v1.ConfigFile, names []string) (*storage.Image, error) {
	labels := make([]string, 0, len(b.o.Labels))
	for k, v := range b.o.Labels {
		labels = append(labels, k+"="+v)
	}
	slices.Sort(labels)
	key := final.clone()
	key.advance(fmt.Sprintf("COMMIT %q", labels))
	if !b.o.NoCache {
		if id, ok := b.cachedImage(key.key); ok {
			if len(names) > 0 {
				if err := b.store.AddNames(id, names); err != nil {
					return nil, fmt.Errorf("name image %s: %w", id[:12], err)
				}
			}
			return b.store.Image(id)
		}
	}
	img, err := image.WriteConfig(ctx, b.store, cfg, final.extras, names)
	if err != nil {
		return nil, fmt.Errorf("commit the image: %w", err)
	}
	b.cacheWrite("image-"+key.key, []byte(img.ID))
	return img, nil
}

// checkPlatform refuses a platform the host cannot run.
func checkPlatform(p string) error {
	if p == "" {
		return nil
	}
	want, err := image.ParsePlatform(p)
	if err != nil {
		return fmt.Errorf("invalid --platform %q: %w", p, err)
	}
	host := hostPlatform()
	if want.OS != host.OS || want.Architecture != host.Architecture {
		return fmt.Errorf("--platform %s cannot be built here: RUN steps need the host's platform %s/%s", p, host.OS, host.Architecture)
	}
	return nil
}

// builder is one build.
type builder struct {
	store storage.Store
	o     Options
	df    *dockerfile
	out   *lineWriter
	multi bool
	// metaArgs are the ARGs before the first FROM, with their values.
	metaArgs map[string]*string
	results  []*stageResult

	mu       sync.Mutex
	used     map[string]bool // build args some ARG declared
	warnings []string
	// mounted are the stages and images mounted to copy from.
	mounted []*workLayer
}

type stageResult struct {
	done  chan struct{}
	state *state
	err   error
}

func (b *builder) warn(w ...string) {
	b.mu.Lock()
	b.warnings = append(b.warnings, w...)
	b.mu.Unlock()
}

func (b *builder) printf(format string, a ...any) {
	fmt.Fprintf(b.out, format, a...)
}

// stepf prints a step line, with the stage's number in a multi-stage build.
func (b *builder) stepf(stage int, step string, format string, a ...any) {
	prefix := ""
	if b.multi {
		prefix = fmt.Sprintf("[%d/%d] ", stage+1, len(b.df.stages))
	}
	if step != "" {
		prefix += "STEP " + step + ": "
	}
	b.printf("%s%s\n", prefix, fmt.Sprintf(format, a...))
}

// resolveMetaArgs gives the ARGs before FROM their values: --build-arg's,
// else their defaults (which may use the ARGs before them).
func (b *builder) resolveMetaArgs() error {
	b.metaArgs = platformArgs(b.o.Platform)
	lex := shell.NewLex(b.df.escape)
	for _, a := range b.df.metaArgs {
		for _, kv := range a.Args {
			if v, ok := b.o.BuildArgs[kv.Key]; ok {
				b.metaArgs[kv.Key] = &v
				b.markUsed(kv.Key)
				continue
			}
			if kv.Value == nil {
				if _, predefined := b.metaArgs[kv.Key]; !predefined {
					b.metaArgs[kv.Key] = nil
				}
				continue
			}
			v, _, err := lex.ProcessWord(*kv.Value, envGetter(nil, b.metaArgs))
			if err != nil {
				return fmt.Errorf("ARG %s: %w", kv.Key, err)
			}
			b.metaArgs[kv.Key] = &v
		}
	}
	return nil
}

func (b *builder) markUsed(k string) {
	b.mu.Lock()
	b.used[k] = true
	b.mu.Unlock()
}

// platformArgs are buildkit's predefined platform ARGs: BUILD* the host's,
// TARGET* the --platform's (or the host's). FROM lines see them; a stage
// sees one it declares with ARG NAME.
func platformArgs(target string) map[string]*string {
	host := hostPlatform()
	t := host
	if p, err := image.ParsePlatform(target); err == nil && target != "" {
		t = *p
	}
	args := map[string]*string{}
	for prefix, p := range map[string]v1.Platform{"BUILD": host, "TARGET": t} {
		plat := p.OS + "/" + p.Architecture
		if p.Variant != "" {
			plat += "/" + p.Variant
		}
		for k, v := range map[string]string{"PLATFORM": plat, "OS": p.OS, "ARCH": p.Architecture, "VARIANT": p.Variant} {
			args[prefix+k] = &v
		}
	}
	return args
}

// expandFrom substitutes the meta args in a FROM's image name or platform.
func (b *builder) expandFrom(word string) (string, error) {
	v, _, err := shell.NewLex(b.df.escape).ProcessWord(word, envGetter(nil, b.metaArgs))
	return v, err
}

// plan lists the stages the target needs, itself last: the stages it is
// based on and copies from, recursively.
func (b *builder) plan(target int) ([]int, error) {
	seen := map[int]bool{}
	var order []int
	var visit func(i int) error
	visit = func(i int) error {
		if seen[i] {
			return nil
		}
		seen[i] = true
		deps, err := b.stageDeps(i)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		order = append(order, i)
		return nil
	}
	return order, visit(target)
}

// stageDeps are the earlier stages stage i uses.
func (b *builder) stageDeps(i int) ([]int, error) {
	st := b.df.stages[i]
	var deps []int
	base, err := b.expandFrom(st.BaseName)
	if err != nil {
		return nil, fmt.Errorf("FROM %s: %w", st.BaseName, err)
	}
	if d, ok := b.df.stageIndex(base, i); ok {
		deps = append(deps, d)
	}
	for _, c := range st.Commands {
		var from []string
		switch c := c.(type) {
		case *instructions.CopyCommand:
			from = append(from, c.From)
		case *instructions.RunCommand:
			for _, m := range instructions.GetMounts(c) {
				from = append(from, m.From)
			}
		}
		for _, f := range from {
			if f == "" {
				continue
			}
			if d, ok := b.df.stageIndex(f, i); ok {
				deps = append(deps, d)
			}
		}
	}
	return deps, nil
}

// stageState waits for stage i's result.
func (b *builder) stageState(ctx context.Context, i int) (*state, error) {
	r := b.results[i]
	if r == nil {
		return nil, fmt.Errorf("stage %d was not planned", i)
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	if r.err != nil {
		return nil, r.err
	}
	return r.state, nil
}

// lineWriter serializes writes of parallel stages; nil output drops them.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func newLineWriter(w io.Writer) *lineWriter {
	if w == nil {
		w = io.Discard
	}
	return &lineWriter{w: w}
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
