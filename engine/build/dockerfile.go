package build

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// dockerfile is a Dockerfile as buildkit's parser reads it.
type dockerfile struct {
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	escape   rune
	// warnings are the parser's own and ours (an ignored syntax line).
	warnings []string
}

func parseDockerfile(name string, data []byte) (*dockerfile, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%s: the Dockerfile is empty", name)
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, locate(err))
	}
	df := &dockerfile{escape: res.EscapeToken}
	if syntax, _, _, ok := parser.DetectSyntax(data); ok {
		df.warnings = append(df.warnings, fmt.Sprintf("the syntax directive %q is ignored: berth builds with its own frontend", syntax))
	}
	for _, w := range res.Warnings {
		df.warnings = append(df.warnings, w.Short)
	}
	df.stages, df.metaArgs, err = instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, locate(err))
	}
	if len(df.stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM instruction: a Dockerfile must start with FROM", name)
	}
	return df, nil
}

// locate puts the line number buildkit's errors carry into their text.
func locate(err error) error {
	var loc interface{ Location() []parser.Range }
	if errors.As(err, &loc) {
		if r := loc.Location(); len(r) > 0 && !strings.Contains(err.Error(), "line ") {
			return fmt.Errorf("line %d: %w", r[0].Start.Line, err)
		}
	}
	return err
}

// stageIndex finds a stage by name (case-insensitive, as docker) or by its
// number; ok is false when ref names none.
func (df *dockerfile) stageIndex(ref string, before int) (int, bool) {
	if i, ok := instructions.HasStage(df.stages[:before], ref); ok {
		return i, true
	}
	var n int
	if _, err := fmt.Sscanf(ref, "%d", &n); err == nil && fmt.Sprint(n) == ref && n >= 0 && n < before {
		return n, true
	}
	return -1, false
}

// parseInstruction reads one instruction alone (an ONBUILD trigger).
func parseInstruction(line string) (instructions.Command, error) {
	res, err := parser.Parse(strings.NewReader(line))
	if err != nil {
		return nil, err
	}
	if len(res.AST.Children) != 1 {
		return nil, fmt.Errorf("ONBUILD trigger %q is not one instruction", line)
	}
	return instructions.ParseCommand(res.AST.Children[0])
}
