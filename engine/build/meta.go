package build

import (
	"fmt"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/berth-containers/berth/engine/image"
)

// defaultShell runs shell-form instructions unless SHELL says otherwise.
var defaultShell = []string{"/bin/sh", "-c"}

func (s *state) shell() []string {
	if len(s.cfg.Config.Shell) > 0 {
		return s.cfg.Config.Shell
	}
	return defaultShell
}

// commandLine is a CMD, ENTRYPOINT or RUN as argv: the shell form through
// the stage's shell.
func (s *state) commandLine(c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return append(slices.Clone(s.shell()), strings.Join(c.CmdLine, " "))
	}
	return slices.Clone(c.CmdLine)
}

// applyMeta applies an instruction that changes only the image config.
func applyMeta(s *state, cmd instructions.Command) error {
	c := &s.cfg.Config
	var created string
	switch cmd := cmd.(type) {
	case *instructions.EnvCommand:
		var kvs []string
		for _, kv := range cmd.Env {
			c.Env = image.SetEnv(c.Env, kv.Key, kv.Value)
			kvs = append(kvs, kv.Key+"="+kv.Value)
		}
		created = "ENV " + strings.Join(kvs, " ")
	case *instructions.LabelCommand:
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		var kvs []string
		for _, kv := range cmd.Labels {
			c.Labels[kv.Key] = kv.Value
			kvs = append(kvs, kv.Key+"="+kv.Value)
		}
		created = "LABEL " + strings.Join(kvs, " ")
	case *instructions.MaintainerCommand:
		s.cfg.Author = cmd.Maintainer
		created = "MAINTAINER " + cmd.Maintainer
	case *instructions.CmdCommand:
		c.Cmd = s.commandLine(cmd.ShellDependantCmdLine)
		s.cmdSet = true
		created = fmt.Sprintf("CMD %q", c.Cmd)
	case *instructions.EntrypointCommand:
		c.Entrypoint = s.commandLine(cmd.ShellDependantCmdLine)
		if !s.cmdSet {
			c.Cmd = nil
		}
		created = fmt.Sprintf("ENTRYPOINT %q", c.Entrypoint)
	case *instructions.ExposeCommand:
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range cmd.Ports {
			ports, err := image.ParsePorts(p)
			if err != nil {
				return err
			}
			for _, port := range ports {
				c.ExposedPorts[port] = struct{}{}
			}
		}
		created = "EXPOSE " + portList(c.ExposedPorts)
	case *instructions.VolumeCommand:
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for _, v := range cmd.Volumes {
			if strings.TrimSpace(v) == "" {
				return fmt.Errorf("VOLUME specified can not be an empty string")
			}
			c.Volumes[v] = struct{}{}
		}
		created = fmt.Sprintf("VOLUME %v", cmd.Volumes)
	case *instructions.WorkdirCommand:
		dir := cmd.Path
		if !path.IsAbs(dir) {
			dir = path.Join("/", c.WorkingDir, dir)
		}
		c.WorkingDir = path.Clean(dir)
		s.dirs = append(s.dirs, c.WorkingDir)
		created = "WORKDIR " + c.WorkingDir
	case *instructions.UserCommand:
		c.User = cmd.User
		created = "USER " + cmd.User
	case *instructions.StopSignalCommand:
		c.StopSignal = cmd.Signal
		created = "STOPSIGNAL " + cmd.Signal
	case *instructions.HealthCheckCommand:
		h := cmd.Health
		c.Healthcheck = &v1.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
		s.extras.HealthStartInterval = h.StartInterval
		created = fmt.Sprintf("HEALTHCHECK %+v", *h)
	case *instructions.ShellCommand:
		c.Shell = slices.Clone(cmd.Shell)
		created = fmt.Sprintf("SHELL %q", cmd.Shell)
	case *instructions.OnbuildCommand:
		c.OnBuild = append(c.OnBuild, cmd.Expression)
		created = "ONBUILD " + cmd.Expression
	default:
		return fmt.Errorf("instruction %s is not supported", strings.ToUpper(cmd.Name()))
	}
	s.history(created, true)
	s.advance(created)
	return nil
}

func portList(ports map[string]struct{}) string {
	var l []string
	for p := range ports {
		l = append(l, p+":{}")
	}
	slices.Sort(l)
	return "map[" + strings.Join(l, " ") + "]"
}
