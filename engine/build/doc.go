// Package build makes images from Dockerfiles with docker's semantics.
//
// buildkit's parser reads the Dockerfile; this package executes it: each
// RUN in a container of the build run by the OCI runtime, COPY and ADD
// into a mounted writable layer, the rest on the image config. Every step
// that changes files becomes an ordinary storage layer named by its chain
// ID, and a cache entry maps the step's key (its parent's key, the
// instruction after substitution and, for COPY and ADD, the digest of the
// files copied) to that layer, so that a step seen before costs a lookup.
package build
