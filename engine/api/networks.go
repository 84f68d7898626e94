package api

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"

	mnetwork "github.com/moby/moby/api/types/network"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/network"
)

func (s *Server) networks() (*network.Manager, error) {
	return network.New(s.o.NetConfDir, s.o.NetRunDir, nil)
}

// netName maps docker's default network name onto berth's.
func netName(m *network.Manager, name string) string {
	if name == "bridge" || name == "default" {
		return m.DefaultName
	}
	return name
}

func netJSON(n *network.Network) mnetwork.Inspect {
	out := mnetwork.Inspect{Network: mnetwork.Network{Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver,
		EnableIPv4: true, Internal: n.Internal, Labels: n.Labels, Options: map[string]string{}, IPAM: mnetwork.IPAM{Driver: "default"}},
		Containers: map[string]mnetwork.EndpointResource{}}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	var cfg mnetwork.IPAMConfig
	if p, err := netip.ParsePrefix(n.Subnet); err == nil {
		cfg.Subnet = p
	}
	if a, err := netip.ParseAddr(n.Gateway); err == nil {
		cfg.Gateway = a
	}
	if cfg.Subnet.IsValid() {
		out.IPAM.Config = []mnetwork.IPAMConfig{cfg}
	}
	return out
}

func (s *Server) networkList(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	m, err := s.networks()
	if err != nil {
		fail(w, err)
		return
	}
	if _, err := m.EnsureDefault(); err != nil && !s.o.Rootless {
		fail(w, err)
		return
	}
	list, err := m.List()
	if err != nil {
		fail(w, err)
		return
	}
	out := []mnetwork.Inspect{}
	for _, n := range list {
		if netMatches(n, filters) {
			out = append(out, netJSON(n))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// netMatches applies docker's network filters: name, id, label, driver.
func netMatches(n *network.Network, filters []string) bool {
	by := map[string][]string{}
	for _, f := range filters {
		k, v, _ := strings.Cut(f, "=")
		by[k] = append(by[k], v)
	}
	for k, vs := range by {
		ok := false
		for _, v := range vs {
			switch k {
			case "name":
				ok = ok || strings.Contains(n.Name, v)
			case "id":
				ok = ok || strings.HasPrefix(n.ID, v)
			case "driver":
				ok = ok || n.Driver == v
			case "label":
				lk, lv, hasValue := strings.Cut(v, "=")
				got, has := n.Labels[lk]
				ok = ok || has && (!hasValue || got == lv)
			case "type":
				ok = ok || v == "custom"
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (s *Server) findNetwork(w http.ResponseWriter, r *http.Request) (*network.Manager, *network.Network, bool) {
	m, err := s.networks()
	if err != nil {
		fail(w, err)
		return nil, nil, false
	}
	ref := r.PathValue("id")
	if !validRef.MatchString(ref) {
		writeError(w, http.StatusBadRequest, "invalid network name or ID "+ref)
		return nil, nil, false
	}
	name := netName(m, ref)
	n, err := m.Inspect(name)
	if errors.Is(err, network.ErrNotFound) {
		// An ID or a prefix of one.
		if list, lerr := m.List(); lerr == nil {
			for _, c := range list {
				if strings.HasPrefix(c.ID, ref) {
					return m, c, true
				}
			}
		}
		writeError(w, http.StatusNotFound, "network "+ref+" not found")
		return nil, nil, false
	}
	if err != nil {
		fail(w, err)
		return nil, nil, false
	}
	return m, n, true
}

func (s *Server) networkInspect(w http.ResponseWriter, r *http.Request) {
	m, n, ok := s.findNetwork(w, r)
	if !ok {
		return
	}
	out := netJSON(n)
	if peers, err := m.Peers(n.Name); err == nil {
		for _, p := range peers {
			out.Containers[p.ContainerID] = mnetwork.EndpointResource{Name: p.Name, IPv4Address: prefixOf(p.IP)}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func prefixOf(ip string) netip.Prefix {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(a, 32)
}

func (s *Server) networkCreate(w http.ResponseWriter, r *http.Request) {
	var req mnetwork.CreateRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Name == "" {
		writeError(w, http.StatusBadRequest, "Name: a network name is required")
		return
	}
	if req.Driver != "" && req.Driver != "bridge" {
		writeError(w, http.StatusBadRequest, "Driver: only bridge networks are served, not "+req.Driver)
		return
	}
	m, err := s.networks()
	if err != nil {
		fail(w, err)
		return
	}
	if n, err := m.Inspect(req.Name); err == nil {
		writeError(w, http.StatusConflict, "network with name "+n.Name+" already exists")
		return
	}
	o := network.CreateOptions{Name: req.Name, Internal: req.Internal, Labels: req.Labels}
	if req.IPAM != nil && len(req.IPAM.Config) > 0 {
		c := req.IPAM.Config[0]
		if c.Subnet.IsValid() {
			o.Subnet = c.Subnet.String()
		}
		if c.Gateway.IsValid() {
			o.Gateway = c.Gateway.String()
		}
	}
	n, err := m.Create(o)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, mnetwork.CreateResponse{ID: n.ID})
}

func (s *Server) networkDelete(w http.ResponseWriter, r *http.Request) {
	m, n, ok := s.findNetwork(w, r)
	if !ok {
		return
	}
	if err := m.Remove(n.Name); err != nil {
		if strings.Contains(err.Error(), "in use") || strings.Contains(err.Error(), "used by") {
			writeError(w, http.StatusConflict, err.Error())
			return
		}
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) networkConnect(w http.ResponseWriter, r *http.Request) {
	_, n, ok := s.findNetwork(w, r)
	if !ok {
		return
	}
	var req mnetwork.ConnectRequest
	if !decode(w, r, &req) {
		return
	}
	c, ok := s.lookupContainer(w, r, req.Container)
	if !ok {
		return
	}
	a := network.Attachment{Network: n.Name}
	if ep := req.EndpointConfig; ep != nil {
		a.Aliases = ep.Aliases
		if ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address.IsValid() {
			a.IP = ep.IPAMConfig.IPv4Address.String()
		}
	}
	if err := container.Connect(r.Context(), c, a); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) networkDisconnect(w http.ResponseWriter, r *http.Request) {
	_, n, ok := s.findNetwork(w, r)
	if !ok {
		return
	}
	var req mnetwork.DisconnectRequest
	if !decode(w, r, &req) {
		return
	}
	c, ok := s.lookupContainer(w, r, req.Container)
	if !ok {
		return
	}
	if err := container.Disconnect(r.Context(), c, n.Name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) networkPrune(w http.ResponseWriter, r *http.Request) {
	m, err := s.networks()
	if err != nil {
		fail(w, err)
		return
	}
	removed, err := m.Prune()
	if err != nil {
		fail(w, err)
		return
	}
	if removed == nil {
		removed = []string{}
	}
	writeJSON(w, http.StatusOK, mnetwork.PruneReport{NetworksDeleted: removed})
}
