package image

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// ApplyChanges applies docker's `--change` instructions (Dockerfile syntax,
// one instruction each) to cfg: CMD, ENTRYPOINT, ENV, LABEL, EXPOSE, USER,
// WORKDIR, VOLUME and STOPSIGNAL. Variables are not expanded.
func ApplyChanges(cfg *v1.Config, changes []string) error {
	for _, c := range changes {
		if err := applyChange(cfg, c); err != nil {
			return fmt.Errorf("invalid change %q: %w", c, err)
		}
	}
	return nil
}

func applyChange(cfg *v1.Config, change string) error {
	fields := strings.Fields(change)
	if len(fields) == 0 {
		return fmt.Errorf("empty instruction")
	}
	instr := strings.ToUpper(fields[0])
	args := strings.TrimSpace(strings.TrimSpace(change)[len(fields[0]):])
	if args == "" {
		return fmt.Errorf("%s needs an argument", instr)
	}
	switch instr {
	case "CMD":
		cfg.Cmd = execForm(args)
	case "ENTRYPOINT":
		cfg.Entrypoint = execForm(args)
	case "ENV":
		pairs, err := keyValues(args)
		if err != nil {
			return err
		}
		for _, kv := range pairs {
			cfg.Env = SetEnv(cfg.Env, kv[0], kv[1])
		}
	case "LABEL":
		pairs, err := keyValues(args)
		if err != nil {
			return err
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			cfg.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		words, err := splitWords(args)
		if err != nil {
			return err
		}
		for _, w := range words {
			ports, err := ParsePorts(w)
			if err != nil {
				return err
			}
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = map[string]struct{}{}
			}
			for _, p := range ports {
				cfg.ExposedPorts[p] = struct{}{}
			}
		}
	case "USER":
		cfg.User = args
	case "WORKDIR":
		// A relative WORKDIR is relative to the previous one, as in a Dockerfile.
		if !path.IsAbs(args) {
			args = path.Join("/", cfg.WorkingDir, args)
		}
		cfg.WorkingDir = path.Clean(args)
	case "VOLUME":
		vols, ok := jsonArray(args)
		if !ok {
			var err error
			if vols, err = splitWords(args); err != nil {
				return err
			}
		}
		for _, v := range vols {
			if v == "" {
				return fmt.Errorf("VOLUME with an empty path")
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[v] = struct{}{}
		}
	case "STOPSIGNAL":
		if !validSignal(args) {
			return fmt.Errorf("unknown signal %q", args)
		}
		cfg.StopSignal = args
	case "ONBUILD":
		return fmt.Errorf("ONBUILD is not supported")
	default:
		return fmt.Errorf("unknown instruction %s (want CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME or WORKDIR)", fields[0])
	}
	return nil
}

// execForm is a CMD or ENTRYPOINT: a JSON array, or else (as docker falls
// back to) a shell command.
func execForm(args string) []string {
	if a, ok := jsonArray(args); ok {
		return a
	}
	return []string{"/bin/sh", "-c", args}
}

func jsonArray(s string) ([]string, bool) {
	if !strings.HasPrefix(s, "[") {
		return nil, false
	}
	var a []string
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return nil, false
	}
	return a, true
}

// keyValues parses ENV and LABEL arguments: `k=v k2="a b"`, or the legacy
// `k value with spaces` when the first word has no "=".
func keyValues(args string) ([][2]string, error) {
	first := strings.Fields(args)[0]
	if !strings.Contains(first, "=") {
		value := strings.TrimSpace(args[len(first):])
		if value == "" {
			return nil, fmt.Errorf("%q has no value (want KEY=VALUE or KEY VALUE)", first)
		}
		return [][2]string{{first, value}}, nil
	}
	words, err := splitWords(args)
	if err != nil {
		return nil, err
	}
	var pairs [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not KEY=VALUE", w)
		}
		pairs = append(pairs, [2]string{k, v})
	}
	return pairs, nil
}

// splitWords splits at unquoted blanks; "..." may hold backslash escapes,
// '...' is literal, a backslash outside quotes escapes the next character.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 || escaped {
		return nil, fmt.Errorf("unterminated quote or escape in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// SetEnv sets KEY=VALUE in env, replacing an earlier value in place.
func SetEnv(env []string, k, v string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// ParsePorts parses "80", "80/udp" or a range "8000-8002/tcp" into the
// config's "port/proto" keys.
func ParsePorts(s string) ([]string, error) {
	spec, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid protocol in port %q (want tcp, udp or sctp)", s)
	}
	lo, hi, isRange := strings.Cut(spec, "-")
	first, err1 := strconv.ParseUint(lo, 10, 16)
	last, err2 := first, error(nil)
	if isRange {
		last, err2 = strconv.ParseUint(hi, 10, 16)
	}
	if err1 != nil || err2 != nil || first == 0 || last < first {
		return nil, fmt.Errorf("invalid port %q", s)
	}
	var ports []string
	for p := first; p <= last; p++ {
		ports = append(ports, fmt.Sprintf("%d/%s", p, proto))
	}
	return ports, nil
}

// validSignal accepts what the runtime will understand: a number or a name
// with or without "SIG".
func validSignal(s string) bool {
	if n, err := strconv.Atoi(s); err == nil {
		return n > 0 && n < 65
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	return unix.SignalNum(name) != 0
}
