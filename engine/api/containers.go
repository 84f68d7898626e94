package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	mcontainer "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	mnetwork "github.com/moby/moby/api/types/network"

	"github.com/berth-containers/berth/bundle"
	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/image"
	"github.com/berth-containers/berth/engine/network"
)

// validRef is what a container or image reference may hold before it is
// looked up (and so before any path is built from it).
var validRef = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.:/@-]*$`)

// findContainer looks up the {id} of the path; a miss is docker's 404.
func (s *Server) findContainer(w http.ResponseWriter, r *http.Request) (*container.Container, bool) {
	return s.lookupContainer(w, r, r.PathValue("id"))
}

// lookupContainer finds a container by name or ID, answering a miss.
func (s *Server) lookupContainer(w http.ResponseWriter, r *http.Request, ref string) (*container.Container, bool) {
	ref = strings.TrimPrefix(ref, "/")
	if !validRef.MatchString(ref) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid container name or ID %q", ref))
		return nil, false
	}
	c, err := container.Find(r.Context(), s.o.Store, ref)
	if errors.Is(err, container.ErrNotFound) {
		writeError(w, http.StatusNotFound, "No such container: "+ref)
		return nil, false
	}
	if err != nil {
		fail(w, err)
		return nil, false
	}
	return c, true
}

func (s *Server) containerList(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	q := r.URL.Query()
	// since and before are the filters' old spellings.
	for _, key := range []string{"since", "before"} {
		if v := q.Get(key); v != "" {
			filters = append(filters, key+"="+v)
		}
	}
	last := 0
	if v := q.Get("limit"); v != "" {
		if last, err = strconv.Atoi(v); err != nil {
			fail(w, badRequest("invalid limit %q: want a number", v))
			return
		}
	}
	list, err := container.Select(r.Context(), s.o.Store, container.ListOptions{All: boolParam(r, "all"), Filters: filters, Last: last})
	if err != nil {
		fail(w, badRequest("%v", err))
		return
	}
	out := make([]mcontainer.Summary, 0, len(list))
	for _, c := range list {
		sm := summary(c)
		if boolParam(r, "size") {
			if sm.SizeRw, sm.SizeRootFs, err = container.Sizes(s.o.Store, c); err != nil {
				fail(w, err)
				return
			}
		}
		out = append(out, sm)
	}
	writeJSON(w, http.StatusOK, out)
}

// parseFilters reads docker's filters parameter ({"key": {"value": true}}
// or, from old clients, {"key": ["value"]}) as key=value strings.
func parseFilters(raw string) ([]string, error) {
	if raw == "" {
		return nil, nil
	}
	var byMap map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &byMap); err == nil {
		var out []string
		for k, vs := range byMap {
			for v, on := range vs {
				if on {
					out = append(out, k+"="+v)
				}
			}
		}
		return out, nil
	}
	var byList map[string][]string
	if err := json.Unmarshal([]byte(raw), &byList); err != nil {
		return nil, badRequest("invalid filters %q: %v", raw, err)
	}
	var out []string
	for k, vs := range byList {
		for _, v := range vs {
			out = append(out, k+"="+v)
		}
	}
	return out, nil
}

func summary(c *container.Container) mcontainer.Summary {
	cmd := strings.TrimSpace(c.Path + " " + strings.Join(c.Args, " "))
	sm := mcontainer.Summary{
		ID: c.ID, Names: []string{"/" + c.Name}, Image: c.Image, ImageID: "sha256:" + c.ImageID,
		Command: cmd, Created: c.Created.Unix(), Labels: c.Labels,
		State: mcontainer.ContainerState(c.Status), Status: c.StatusText(),
		Ports: []mcontainer.PortSummary{},
	}
	sm.HostConfig.NetworkMode = c.Network
	if hs := c.HealthStatus(); hs != "none" {
		sm.Health = &mcontainer.HealthSummary{Status: mcontainer.HealthStatus(hs), FailingStreak: c.Health.FailingStreak}
	}
	for _, p := range c.Published {
		ps := mcontainer.PortSummary{PrivatePort: uint16(p.ContainerPort), PublicPort: uint16(p.HostPort), Type: p.Protocol}
		if ps.Type == "" {
			ps.Type = "tcp"
		}
		if ip, err := netip.ParseAddr(p.HostIP); err == nil {
			ps.IP = ip
		} else {
			ps.IP = netip.IPv4Unspecified()
		}
		sm.Ports = append(sm.Ports, ps)
	}
	nets := &mcontainer.NetworkSettingsSummary{Networks: map[string]*mnetwork.EndpointSettings{}}
	for name, ip := range c.IPs {
		ep := &mnetwork.EndpointSettings{}
		if a, err := netip.ParseAddr(ip); err == nil {
			ep.IPAddress = a
		}
		nets.Networks[name] = ep
	}
	sm.NetworkSettings = nets
	for _, v := range c.Volumes {
		sm.Mounts = append(sm.Mounts, mcontainer.MountPoint{Type: mountType(v.Type), Name: v.Name, Source: v.Source, Destination: v.Destination, RW: !v.ReadOnly})
	}
	return sm
}

func mountType(t string) mount.Type { return mount.Type(t) }

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request) {
	var req mcontainer.CreateRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Config == nil || req.Image == "" {
		writeError(w, http.StatusBadRequest, "config.Image: an image is required")
		return
	}
	o, err := s.createOptions(r.URL.Query().Get("name"), &req)
	if err != nil {
		fail(w, err)
		return
	}
	c, err := container.Create(r.Context(), s.o.Store, o)
	if err != nil {
		switch {
		case errors.Is(err, image.ErrNotFound):
			writeError(w, http.StatusNotFound, "No such image: "+req.Image)
		case strings.Contains(err.Error(), "already in use"):
			writeError(w, http.StatusConflict, err.Error())
		case strings.Contains(err.Error(), "invalid"):
			writeError(w, http.StatusBadRequest, err.Error())
		default:
			fail(w, err)
		}
		return
	}
	writeJSON(w, http.StatusCreated, mcontainer.CreateResponse{ID: c.ID, Warnings: []string{}})
}

// createOptions maps docker's create request onto the library's options,
// refusing what berth cannot do rather than ignoring it.
func (s *Server) createOptions(name string, req *mcontainer.CreateRequest) (container.CreateOptions, error) {
	cfg, hc := req.Config, req.HostConfig
	if hc == nil {
		hc = &mcontainer.HostConfig{}
	}
	o := container.CreateOptions{
		Name: name, Image: cfg.Image, Tty: cfg.Tty, OpenStdin: cfg.OpenStdin, AutoRemove: hc.AutoRemove,
		Runtime: s.o.Runtime,
		Etc:     bundle.EtcOptions{ExtraHosts: hc.ExtraHosts, DNS: addrStrings(hc.DNS)},
	}
	if cfg.StopTimeout != nil {
		o.StopTimeout = *cfg.StopTimeout
	}
	if h := cfg.Healthcheck; h != nil {
		o.Healthcheck = &container.Healthcheck{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	}
	b := &o.Bundle
	b.Args, b.Env, b.WorkingDir, b.User, b.Hostname = cfg.Cmd, cfg.Env, cfg.WorkingDir, cfg.User, cfg.Hostname
	b.Labels, b.StopSignal = cfg.Labels, cfg.StopSignal
	if cfg.Entrypoint != nil {
		ep := []string(cfg.Entrypoint)
		b.Entrypoint = &ep
	}
	b.ReadOnly, b.Privileged, b.CapAdd, b.CapDrop = hc.ReadonlyRootfs, hc.Privileged, hc.CapAdd, hc.CapDrop
	b.Memory, b.PidsLimit = hc.Memory, derefInt64(hc.PidsLimit)
	if hc.NanoCPUs > 0 {
		b.CPUs = float64(hc.NanoCPUs) / 1e9
	}
	for dst, opts := range hc.Tmpfs {
		t := dst
		if opts != "" {
			t += ":" + opts
		}
		b.Tmpfs = append(b.Tmpfs, t)
	}
	if hc.ShmSize > 0 {
		b.ShmSize = hc.ShmSize
	}
	for _, opt := range hc.SecurityOpt {
		switch k, v, _ := strings.Cut(opt, "="); {
		case k == "seccomp" && v != "":
			b.SeccompProfile = v
		case k == "no-new-privileges" && (v == "" || v == "true"):
			b.NoNewPrivileges = true
		case k == "label" || k == "apparmor":
			// No LSM on this kind of host; docker ignores them there too.
		default:
			return o, badRequest("HostConfig.SecurityOpt: %q is not supported", opt)
		}
	}
	for _, u := range hc.Ulimits {
		b.Ulimits = append(b.Ulimits, fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard))
	}
	if hc.Init != nil && *hc.Init {
		if err := container.UseInit(b); err != nil {
			return o, badRequest("HostConfig.Init: %v", err)
		}
	}
	for _, bind := range hc.Binds {
		m, err := container.ParseVolume(bind)
		if err != nil {
			return o, badRequest("HostConfig.Binds %q: %v", bind, err)
		}
		o.Mounts = append(o.Mounts, m)
	}
	for _, mm := range hc.Mounts {
		spec := fmt.Sprintf("type=%s,target=%s", mm.Type, mm.Target)
		if mm.Source != "" {
			spec += ",source=" + mm.Source
		}
		if mm.ReadOnly {
			spec += ",readonly"
		}
		m, err := container.ParseMount(spec)
		if err != nil {
			return o, badRequest("HostConfig.Mounts: %v", err)
		}
		o.Mounts = append(o.Mounts, m)
	}
	o.VolumesFrom = hc.VolumesFrom
	switch p := hc.RestartPolicy; p.Name {
	case "", "no":
		o.Restart = container.RestartPolicy{Name: "no"}
	case "always", "unless-stopped", "on-failure":
		o.Restart = container.RestartPolicy{Name: string(p.Name), MaxRetries: p.MaximumRetryCount}
	default:
		return o, badRequest("HostConfig.RestartPolicy.Name %q: want no, always, unless-stopped or on-failure", p.Name)
	}
	if o.AutoRemove && o.Restart.Name != "no" {
		return o, badRequest("HostConfig.AutoRemove and a restart policy cannot be used together")
	}
	o.Log = container.LogConfig{Driver: "k8s-file"}
	switch d := hc.LogConfig.Type; d {
	case "", "json-file", "k8s-file", "local":
		if d == "json-file" {
			o.Log.Driver = d
		}
	case "none":
		o.Log.Driver = d
	default:
		return o, badRequest("HostConfig.LogConfig.Type %q: want json-file, k8s-file or none", d)
	}
	var err error
	if o.Network, err = s.networkOptions(req); err != nil {
		return o, err
	}
	return o, nil
}

// networkOptions maps NetworkMode, the endpoints and the port bindings.
func (s *Server) networkOptions(req *mcontainer.CreateRequest) (container.NetworkOptions, error) {
	hc := req.HostConfig
	o := container.NetworkOptions{ConfDir: s.o.NetConfDir, RunDir: s.o.NetRunDir}
	mode := ""
	if hc != nil {
		mode = string(hc.NetworkMode)
	}
	switch {
	case mode == "none" || mode == "host" || strings.HasPrefix(mode, "container:"):
		o.Mode = mode
	case mode == "" || mode == "default" || mode == "bridge":
		o.Attachments = []network.Attachment{{}}
	default:
		o.Attachments = []network.Attachment{{Network: mode}}
	}
	if req.NetworkingConfig != nil && len(o.Attachments) == 1 {
		for name, ep := range req.NetworkingConfig.EndpointsConfig {
			if ep == nil {
				continue
			}
			if name == mode || (name == "bridge" && o.Attachments[0].Network == "") {
				o.Attachments[0].Aliases = ep.Aliases
				if ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address.IsValid() {
					o.Attachments[0].IP = ep.IPAMConfig.IPv4Address.String()
				}
			}
		}
	}
	if hc != nil {
		for port, bindings := range hc.PortBindings {
			for _, pb := range bindings {
				spec := port.String()
				hp := pb.HostPort
				if pb.HostIP.IsValid() && !pb.HostIP.IsUnspecified() {
					spec = pb.HostIP.String() + ":" + hp + ":" + spec
				} else if hp != "" {
					spec = hp + ":" + spec
				}
				o.Ports = append(o.Ports, spec)
			}
		}
	}
	return o, nil
}

func addrStrings(as []netip.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func derefInt64(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request) {
	c, ok := s.findContainer(w, r)
	if !ok {
		return
	}
	resp := inspect(c, s.o.Store.GraphDriverName())
	if boolParam(r, "size") {
		rw, rootfs, err := container.Sizes(s.o.Store, c)
		if err != nil {
			fail(w, err)
			return
		}
		resp.SizeRw, resp.SizeRootFs = &rw, &rootfs
	}
	writeJSON(w, http.StatusOK, resp)
}

// inspect is docker's container inspect, from the library's.
func inspect(c *container.Container, driver string) *mcontainer.InspectResponse {
	in := container.InspectContainer(c, driver)
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "0001-01-01T00:00:00Z"
		}
		return t.Format(time.RFC3339Nano)
	}
	st := in.State
	resp := &mcontainer.InspectResponse{
		ID: in.ID, Created: ts(in.Created), Path: in.Path, Args: in.Args, Image: "sha256:" + c.ImageID,
		ResolvConfPath: in.ResolvConfPath, HostnamePath: in.HostnamePath, HostsPath: in.HostsPath, LogPath: in.LogPath,
		Name: in.Name, RestartCount: in.RestartCount, Driver: in.Driver, Platform: in.Platform,
		State: &mcontainer.State{Status: mcontainer.ContainerState(st.Status), Running: st.Running, Paused: st.Paused,
			Restarting: st.Restarting, OOMKilled: st.OOMKilled, Dead: st.Dead, Pid: st.Pid, ExitCode: st.ExitCode,
			Error: st.Error, StartedAt: ts(st.StartedAt), FinishedAt: ts(st.FinishedAt)},
		HostConfig: &mcontainer.HostConfig{Binds: in.HostConfig.Binds, NetworkMode: mcontainer.NetworkMode(in.HostConfig.NetworkMode),
			AutoRemove: in.HostConfig.AutoRemove, Runtime: in.HostConfig.Runtime,
			RestartPolicy: mcontainer.RestartPolicy{Name: mcontainer.RestartPolicyMode(in.HostConfig.RestartPolicy.Name), MaximumRetryCount: in.HostConfig.RestartPolicy.MaximumRetryCount},
			LogConfig:     mcontainer.LogConfig{Type: in.HostConfig.LogConfig.Driver},
			Resources:     resources(in.HostConfig.Resources)},
		Config: &mcontainer.Config{Hostname: in.Config.Hostname, User: in.Config.User, Tty: in.Config.Tty, OpenStdin: in.Config.OpenStdin,
			Env: in.Config.Env, Cmd: in.Config.Cmd, Image: in.Config.Image, WorkingDir: in.Config.WorkingDir,
			Entrypoint: in.Config.Entrypoint, Labels: in.Config.Labels, StopSignal: in.Config.StopSignal},
		NetworkSettings: &mcontainer.NetworkSettings{Networks: map[string]*mnetwork.EndpointSettings{}, Ports: mnetwork.PortMap{}},
		Mounts:          []mcontainer.MountPoint{},
	}
	if in.Config.StopTimeout != 0 {
		t := in.Config.StopTimeout
		resp.Config.StopTimeout = &t
	}
	if h := in.Config.Healthcheck; h != nil {
		resp.Config.Healthcheck = &mcontainer.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	}
	if h := st.Health; h != nil {
		resp.State.Health = &mcontainer.Health{Status: mcontainer.HealthStatus(h.Status), FailingStreak: h.FailingStreak,
			Log: make([]*mcontainer.HealthcheckResult, 0, len(h.Log))}
		for _, r := range h.Log {
			resp.State.Health.Log = append(resp.State.Health.Log,
				&mcontainer.HealthcheckResult{Start: r.Start, End: r.End, ExitCode: r.ExitCode, Output: r.Output})
		}
	}
	for name, ep := range in.NetworkSettings.Networks {
		e := &mnetwork.EndpointSettings{Aliases: ep.Aliases}
		if a, err := netip.ParseAddr(ep.IPAddress); err == nil {
			e.IPAddress = a
		}
		resp.NetworkSettings.Networks[name] = e
	}
	for _, p := range in.NetworkSettings.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		port, err := mnetwork.ParsePort(fmt.Sprintf("%d/%s", p.ContainerPort, proto))
		if err != nil {
			continue
		}
		b := mnetwork.PortBinding{HostPort: strconv.Itoa(int(p.HostPort))}
		if a, err := netip.ParseAddr(p.HostIP); err == nil {
			b.HostIP = a
		} else {
			b.HostIP = netip.IPv4Unspecified()
		}
		resp.NetworkSettings.Ports[port] = append(resp.NetworkSettings.Ports[port], b)
	}
	for _, v := range c.Volumes {
		resp.Mounts = append(resp.Mounts, mcontainer.MountPoint{Type: mountType(v.Type), Name: v.Name, Source: v.Source, Destination: v.Destination, RW: !v.ReadOnly})
	}
	return resp
}

func (s *Server) containerStart(w http.ResponseWriter, r *http.Request) {
	c, ok := s.findContainer(w, r)
	if !ok {
		return
	}
	if err := container.Refresh(r.Context(), s.o.Store, c); err != nil {
		fail(w, err)
		return
	}
	if c.Status == container.Running || c.Status == container.Paused {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	// A client attached before the start is the new monitor's first.
	p := s.takePending(c.ID)
	first := p.monitorEnd()
	m, err := s.o.NewMonitor(first)
	if first != nil {
		first.Close()
	}
	if err != nil {
		p.abort()
		fail(w, err)
		return
	}
	if err := container.Start(context.WithoutCancel(r.Context()), s.o.Store, c, m); err != nil {
		p.abort()
		fail(w, err)
		return
	}
	p.run()
	w.WriteHeader(http.StatusNoContent)
}

// stopTimeout reads t (seconds; docker's -1 is no limit) or the
// container's own.
func stopTimeout(r *http.Request, c *container.Container) (time.Duration, error) {
	v := r.URL.Query().Get("t")
	if v == "" {
		v = r.URL.Query().Get("timeout")
	}
	if v == "" {
		if c.StopTimeout > 0 {
			return time.Duration(c.StopTimeout) * time.Second, nil
		}
		return 10 * time.Second, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, badRequest("invalid t %q: want seconds", v)
	}
	if n < 0 {
		return 0, nil
	}
	return time.Duration(n) * time.Second, nil
}

// stopTarget is the container of a stop or restart and its timeout.
func (s *Server) stopTarget(w http.ResponseWriter, r *http.Request) (*container.Container, time.Duration, bool) {
	c, ok := s.findContainer(w, r)
	if !ok {
		return nil, 0, false
	}
	timeout, err := stopTimeout(r, c)
	if err != nil {
		fail(w, err)
		return nil, 0, false
	}
	return c, timeout, true
}

func (s *Server) containerStop(w http.ResponseWriter, r *http.Request) {
	c, timeout, ok := s.stopTarget(w, r)
	if !ok {
		return
	}
	if c.Status != container.Running && c.Status != container.Paused {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if err := container.Stop(context.WithoutCancel(r.Context()), s.o.Store, c, timeout); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) containerRestart(w http.ResponseWriter, r *http.Request) {
	c, timeout, ok := s.stopTarget(w, r)
	if !ok {
		return
	}
	ctx := context.WithoutCancel(r.Context())
	if err := container.Stop(ctx, s.o.Store, c, timeout); err != nil {
		fail(w, err)
		return
	}
	if _, err := container.WaitExit(ctx, s.o.Store, c, 0); err != nil {
		fail(w, err)
		return
	}
	if err := c.Reload(); err != nil {
		fail(w, err)
		return
	}
	m, err := s.o.NewMonitor(nil)
	if err != nil {
		fail(w, err)
		return
	}
	if err := container.Start(ctx, s.o.Store, c, m); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) containerKill(w http.ResponseWriter, r *http.Request) {
	c, ok := s.findContainer(w, r)
	if !ok {
		return
	}
	sig := r.URL.Query().Get("signal")
	if sig == "" {
		sig = "KILL"
	}
	if c.Status != container.Running && c.Status != container.Paused {
		writeError(w, http.StatusConflict, fmt.Sprintf("Cannot kill container: %s: container %s is not running", c.Name, c.ID))
		return
	}
	if err := container.Kill(r.Context(), s.o.Store, c, sig); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) containerWait(w http.ResponseWriter, r *http.Request) {
	c, ok := s.findContainer(w, r)
	if !ok {
		return
	}
	cond := r.URL.Query().Get("condition")
	switch cond {
	case "", "not-running", "next-exit", "removed":
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid condition %q: want not-running, next-exit or removed", cond))
		return
	}
	// The status line goes out at once: clients wait for it before they
	// start the container.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	ctx := r.Context()
	// A created container's next exit (or removal) comes after its start.
	if cond == "next-exit" || cond == "removed" {
		if err := waitStarted(ctx, c); err != nil {
			return
		}
	}
	resp := mcontainer.WaitResponse{}
	code, err := container.WaitExit(ctx, s.o.Store, c, 0)
	if err != nil {
		resp.Error = &mcontainer.WaitExitError{Message: err.Error()}
	}
	resp.StatusCode = int64(code)
	if cond == "removed" {
		waitRemoved(ctx, s, c.ID)
	}
	_ = json.NewEncoder(w).Encode(resp)
}

// waitStarted waits for a created container's (next) start, for wait's
// next-exit: a container that has not run yet has no exit to report.
func waitStarted(ctx context.Context, c *container.Container) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := c.Reload(); err != nil {
			return nil // removed: WaitExit reports it
		}
		if c.Status != container.Created {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// waitRemoved waits until an auto-removed container's monitor has
// removed it.
func waitRemoved(ctx context.Context, s *Server, id string) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := container.Lookup(s.o.Store, id); errors.Is(err, container.ErrNotFound) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Server) containerDelete(w http.ResponseWriter, r *http.Request) {
	c, ok := s.findContainer(w, r)
	if !ok {
		return
	}
	force := boolParam(r, "force")
	if !force && (c.Status == container.Running || c.Status == container.Paused) {
		writeError(w, http.StatusConflict, fmt.Sprintf("cannot remove container %q: container is running: stop the container before removing or force remove", "/"+c.Name))
		return
	}
	if err := container.RemoveWithVolumes(context.WithoutCancel(r.Context()), s.o.Store, c, force, boolParam(r, "v")); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) {
	c, ok := s.findContainer(w, r)
	if !ok {
		return
	}
	stdout, stderr := boolParam(r, "stdout"), boolParam(r, "stderr")
	if !stdout && !stderr {
		writeError(w, http.StatusBadRequest, "you must choose at least one stream")
		return
	}
	o := container.LogOptions{Follow: boolParam(r, "follow"), Timestamps: boolParam(r, "timestamps"), Tail: -1}
	if t := r.URL.Query().Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid tail %q: want a number or all", t))
			return
		}
		o.Tail = n
	}
	for key, dst := range map[string]*time.Time{"since": &o.Since, "until": &o.Until} {
		if v := r.URL.Query().Get(key); v != "" && v != "0" {
			t, err := unixTime(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid %s %q: %v", key, v, err))
				return
			}
			*dst = t
		}
	}
	w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
	if c.Tty {
		w.Header().Set("Content-Type", "application/vnd.docker.raw-stream")
	}
	w.WriteHeader(http.StatusOK)
	out := newStreams(w, c.Tty)
	var so, se = out.stdout, out.stderr
	if !stdout {
		so = discard{}
	}
	if !stderr {
		se = discard{}
	}
	_ = container.Logs(r.Context(), s.o.Store, c, o, so, se)
}

// unixTime reads docker's SECONDS[.NANOSECONDS].
func unixTime(v string) (time.Time, error) {
	sec, frac, _ := strings.Cut(v, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, err
		}
	}
	return time.Unix(s, ns), nil
}

func (s *Server) containerResize(w http.ResponseWriter, r *http.Request) {
	c, ok := s.findContainer(w, r)
	if !ok {
		return
	}
	h, wd, ok := terminalSize(w, r)
	if !ok {
		return
	}
	if err := resize(c, h, wd); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// terminalSize reads resize's h and w.
func terminalSize(w http.ResponseWriter, r *http.Request) (rows, cols uint16, ok bool) {
	h, err1 := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
	wd, err2 := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
	if err1 != nil || err2 != nil {
		writeError(w, http.StatusBadRequest, "invalid h or w: want numbers of rows and columns")
		return 0, 0, false
	}
	return uint16(h), uint16(wd), true
}

// resources is a container's limits in docker's shape.
func resources(r container.Resources) mcontainer.Resources {
	return mcontainer.Resources{Memory: r.Memory, MemoryReservation: r.MemoryReservation, MemorySwap: r.MemorySwap,
		CPUShares: r.CPUShares, CPUQuota: r.CPUQuota, CPUPeriod: r.CPUPeriod, CpusetCpus: r.CpusetCpus,
		CpusetMems: r.CpusetMems, PidsLimit: r.PidsLimit, BlkioWeight: r.BlkioWeight}
}
