package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	mregistry "github.com/moby/moby/api/types/registry"

	"github.com/berth-containers/berth/engine/registry"
)

// registryFor is the registry client for a request: with the credentials
// of its X-Registry-Auth header (base64url JSON, as docker clients send
// it) before those of the credentials file.
func (s *Server) registryFor(r *http.Request) (*registry.Client, error) {
	raw := r.Header.Get("X-Registry-Auth")
	if raw == "" {
		return s.o.Registry, nil
	}
	js, err := base64.URLEncoding.DecodeString(raw)
	if err != nil {
		// Some clients pad differently or use the standard alphabet.
		if js, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(raw, "=")); err != nil {
			if js, err = base64.StdEncoding.DecodeString(raw); err != nil {
				return nil, badRequest("X-Registry-Auth: not base64: %v", err)
			}
		}
	}
	var ac mregistry.AuthConfig
	if err := json.Unmarshal(js, &ac); err != nil {
		return nil, badRequest("X-Registry-Auth: %v", err)
	}
	if ac == (mregistry.AuthConfig{}) {
		return s.o.Registry, nil
	}
	return s.o.Registry.WithAuth(authn.AuthConfig{Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}), nil
}

// auth is POST /auth: the credentials are checked against the registry;
// the client stores them (as dockerd, the service keeps nothing).
func (s *Server) auth(w http.ResponseWriter, r *http.Request) {
	var ac mregistry.AuthConfig
	if !decode(w, r, &ac) {
		return
	}
	host := ac.ServerAddress
	if host == "" {
		host = "docker.io"
	}
	reg, err := s.o.Registry.ParseRegistry(host)
	if err != nil {
		writeError(w, http.StatusBadRequest, "serveraddress: "+err.Error())
		return
	}
	if err := s.o.Registry.CheckLogin(r.Context(), reg, ac.Username, ac.Password); err != nil {
		writeError(w, http.StatusUnauthorized, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, mregistry.AuthResponse{Status: "Login Succeeded"})
}
