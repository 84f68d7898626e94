package build

import (
	"crypto/sha256"
	"encoding/hex"
	"runtime"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/berth-containers/berth/engine/image"
)

// state is a stage after some steps: the image so far.
type state struct {
	cfg    *v1.ConfigFile
	extras image.Extras
	layers []image.Layer
	// key is the cache key of everything so far.
	key string
	// args are the ARGs in scope, with their values (nil: none given).
	args     map[string]*string
	argOrder []string
	// dirs are WORKDIRs still to create, in the next layer.
	dirs []string
	// cmdSet says this stage set CMD: a later ENTRYPOINT keeps it (an
	// inherited CMD it drops).
	cmdSet bool
}

// top is the chain ID of the top layer ("" for none).
func (s *state) top() string {
	if len(s.layers) == 0 {
		return ""
	}
	return s.layers[len(s.layers)-1].ChainID
}

func (s *state) diffIDs() []v1.Hash {
	ids := make([]v1.Hash, len(s.layers))
	for i, l := range s.layers {
		ids[i] = l.DiffID
	}
	return ids
}

// advance moves the key past a step.
func (s *state) advance(step string) {
	sum := sha256.Sum256([]byte(s.key + "\x00" + step))
	s.key = hex.EncodeToString(sum[:])
}

// history appends the history entry of a step.
func (s *state) history(createdBy string, empty bool) {
	s.cfg.History = append(s.cfg.History, v1.History{Created: v1.Time{Time: nowUTC()}, CreatedBy: createdBy, Comment: "buildkit.dockerfile.v0", EmptyLayer: empty})
}

// clone copies a stage's state for a stage built on it.
func (s *state) clone() *state {
	return &state{cfg: s.cfg.DeepCopy(), extras: s.extras, layers: slices.Clone(s.layers), key: s.key, dirs: slices.Clone(s.dirs)}
}

// argEnv are the ARGs with values that no ENV of the same name hides, as
// KEY=VALUE: what RUN gets besides the image's env.
func (s *state) argEnv() []string {
	var env []string
	for _, k := range s.argOrder {
		v := s.args[k]
		if v == nil || hasEnv(s.cfg.Config.Env, k) {
			continue
		}
		env = append(env, k+"="+*v)
	}
	return env
}

func hasEnv(env []string, k string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, k+"=") {
			return true
		}
	}
	return false
}

// lex substitutes variables as the shell lexer does, with the image's
// env first and the ARGs after.
func (s *state) expander(escape rune) func(string) (string, error) {
	lex := shell.NewLex(escape)
	get := envGetter(s.cfg.Config.Env, s.args)
	return func(word string) (string, error) {
		v, _, err := lex.ProcessWord(word, get)
		return v, err
	}
}

// envGetter looks names up in env (KEY=VALUE) and then in args.
func envGetter(env []string, args map[string]*string) shell.EnvGetter {
	return mapEnv{env: env, args: args}
}

type mapEnv struct {
	env  []string
	args map[string]*string
}

func (m mapEnv) Get(k string) (string, bool) {
	for i := len(m.env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(m.env[i], k+"="); ok {
			return v, true
		}
	}
	if v, ok := m.args[k]; ok && v != nil {
		return *v, true
	}
	return "", false
}

func (m mapEnv) Keys() []string {
	var keys []string
	for _, kv := range m.env {
		k, _, _ := strings.Cut(kv, "=")
		keys = append(keys, k)
	}
	for k, v := range m.args {
		if v != nil {
			keys = append(keys, k)
		}
	}
	return keys
}

func hostPlatform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// scratch is the config of an empty image.
func scratch() *v1.ConfigFile {
	p := hostPlatform()
	return &v1.ConfigFile{OS: p.OS, Architecture: p.Architecture, RootFS: v1.RootFS{Type: "layers"},
		Config: v1.Config{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}}
}
