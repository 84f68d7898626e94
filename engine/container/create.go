package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.opentelemetry.io/otel/attribute"
	"go.podman.io/storage"

	"github.com/berth-containers/berth/bundle"
	"github.com/berth-containers/berth/engine/events"
	"github.com/berth-containers/berth/engine/image"
	"github.com/berth-containers/berth/engine/network"
	"github.com/berth-containers/berth/engine/rootless"
	"github.com/berth-containers/berth/engine/slirp"
	"github.com/berth-containers/berth/engine/tracing"
	rtstate "github.com/berth-containers/berth/libcontainer/state"
)

// CreateOptions are docker create's inputs beyond the image.
type CreateOptions struct {
	Name string
	// Image is the user's reference; it must be in the store.
	Image  string
	Bundle bundle.Options
	Etc    bundle.EtcOptions

	Tty, OpenStdin, AutoRemove bool
	Restart                    RestartPolicy
	StopTimeout                int
	Log                        LogConfig
	Runtime                    Runtime
	Network                    NetworkOptions
	// Mounts are -v's and --mount's volumes, binds and tmpfs mounts
	// (Bundle.Binds and Bundle.Tmpfs are taken as they are).
	Mounts []Mount
	// VolumesFrom are "CONTAINER[:ro|:rw]": that container's volumes and
	// binds at the same paths.
	VolumesFrom []string
	// Healthcheck is the user's, merged over the image's.
	Healthcheck *Healthcheck
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Create makes a container: a writable layer on the image, a bundle whose
// config.json any OCI runtime can run, and the records. Nothing is left if
// it fails.
func Create(ctx context.Context, s storage.Store, o CreateOptions) (c *Container, err error) {
	ctx, span := tracing.Start(ctx, "create", attribute.String("container.image", o.Image))
	defer func() { tracing.End(span, err) }()
	if o.Name == "" {
		o.Name = randomName()
	} else if !validName.MatchString(o.Name) {
		return nil, fmt.Errorf("invalid container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", o.Name)
	}
	if b := o.Bundle; rootless.Enabled() && (b.Memory != 0 || b.CPUs != 0 || b.PidsLimit > 0) {
		return nil, errors.New("--memory, --cpus and --pids-limit need a cgroup of the container's own, which a rootless berth cannot make")
	}
	img, err := image.Lookup(s, o.Image)
	if err != nil {
		return nil, err
	}
	imgCfg, imgHealth, err := imageConfig(s, img.ID)
	if err != nil {
		return nil, err
	}
	o.Healthcheck = MergeHealthcheck(imgHealth, o.Healthcheck)
	if err := o.Healthcheck.Validate(); err != nil {
		return nil, err
	}
	vols, err := planVolumes(s, o, imgCfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			vols.undo()
		}
	}()
	id := randomID()
	sc, err := s.CreateContainer(id, []string{o.Name}, img.ID, "", creatorMark(), nil)
	if errors.Is(err, storage.ErrDuplicateName) {
		return nil, fmt.Errorf("the container name %q is already in use", o.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	defer func() {
		if err != nil {
			_ = s.DeleteContainer(id)
		}
	}()
	c, err = newRecord(s, sc, o, imgCfg)
	if err != nil {
		return nil, err
	}
	if o.Bundle.NetworkMode, err = networkMode(ctx, func(ref string) (*Container, error) { return Lookup(s, ref) }, id, &o.Network); err != nil {
		return nil, err
	}
	if o.Network.Mode == "" {
		c.Networks, c.NetConfDir, c.NetRunDir = o.Network.Attachments, o.Network.ConfDir, o.Network.RunDir
	}
	c.Network = o.Network.Mode
	if c.Network == "" {
		c.Network = "bridge"
		if n := o.Network.Attachments; len(n) > 0 && n[0].Network != "" {
			c.Network = n[0].Network
		}
		if n := o.Network.Attachments; len(n) > 0 && network.IsSlirp(n[0].Network) {
			c.Network = network.SlirpNetwork
			// slirp4netns's forwarder reaches the host's nameservers,
			// loopback ones included, as podman has it.
			if len(o.Etc.DNS) == 0 {
				o.Etc.DNS = []string{slirp.DNS}
			}
		}
	}
	if err := writeBundle(s, c, imgCfg, o, vols); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(c.Dir, configFile), &c.Config); err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	if err := writeJSON(filepath.Join(c.Dir, stateFile), &c.State); err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	events.Container(s.RunRoot(), "create", c.ID, c.Image, c.Name)
	return c, nil
}

func newRecord(s storage.Store, sc *storage.Container, o CreateOptions, img *ocispec.Image) (*Container, error) {
	dir, err := s.ContainerDirectory(sc.ID)
	if err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	runDir, err := s.ContainerRunDirectory(sc.ID)
	if err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 10
	}
	if o.Log.Driver == "" {
		o.Log.Driver = "k8s-file"
	}
	b := o.Bundle
	c := &Container{Dir: dir, RunDir: runDir, LayerID: sc.LayerID, State: State{Status: Created}}
	c.Config = Config{
		ID: sc.ID, Name: o.Name, Image: o.Image, ImageID: sc.ImageID, Created: time.Now().UTC(),
		Runtime: o.Runtime.Path, RuntimeRoot: o.Runtime.Root,
		Tty: o.Tty, OpenStdin: o.OpenStdin, AutoRemove: o.AutoRemove, Restart: o.Restart,
		StopSignal: b.StopSignal, StopTimeout: o.StopTimeout, Log: o.Log,
		Hostname: b.Hostname, User: b.User, Env: b.Env, WorkingDir: b.WorkingDir, Cmd: b.Args,
		Labels: b.Labels, Binds: b.Binds, Ports: o.Network.Ports,
	}
	if o.Healthcheck.Enabled() {
		c.Healthcheck = o.Healthcheck
	}
	if b.Entrypoint != nil {
		c.Entrypoint = *b.Entrypoint
	}
	if c.Labels == nil {
		c.Labels = img.Config.Labels
	}
	return c, nil
}

// writeBundle mounts the container's rootfs (the image's users are looked
// up in it, empty volumes filled from it), writes config.json and the /etc
// files, and unmounts again:
// the monitor mounts it while the container runs.
func writeBundle(s storage.Store, c *Container, img *ocispec.Image, o CreateOptions, vols *volumePlan) error {
	rootfs, err := s.Mount(c.ID, "")
	if err != nil {
		return fmt.Errorf("mount container %s: %w", short(c.ID), err)
	}
	defer func() { _, _ = s.Unmount(c.ID, false) }()
	bo := o.Bundle
	// Volumes are made, and filled from the image, before the bundle.
	if err := vols.apply(rootfs, &bo, c); err != nil {
		return err
	}
	bo.Terminal = o.Tty
	if bo.Hostname == "" {
		bo.Hostname = c.ID[:12]
	}
	bo.Rootless = rootless.Enabled()
	if bo.CgroupsPath == "" && !bo.Rootless {
		bo.CgroupsPath = "/berth/" + c.ID
	}
	spec, err := bundle.Generate(img, rootfs, bo)
	if err != nil {
		return err
	}
	if err := bundle.AddEtcFiles(c.Dir, spec, o.Etc); err != nil {
		return err
	}
	if len(c.Networks) > 0 {
		// Peers' names are added to a copy of this at each start.
		if err := copyFile(filepath.Join(c.Dir, "hosts"), filepath.Join(c.Dir, hostsBase)); err != nil {
			return err
		}
	}
	if err := bundle.WriteBundle(c.Dir, spec); err != nil {
		return err
	}
	c.Path, c.Args = spec.Process.Args[0], spec.Process.Args[1:]
	c.Hostname, c.CgroupPath = spec.Hostname, bo.CgroupsPath
	if c.StopSignal == "" {
		c.StopSignal = spec.Annotations[bundle.AnnotationStopSignal]
	}
	return nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// imageConfig reads the image's config as the image-spec type bundle
// wants, and its health check (with the SHELL that runs a CMD-SHELL test,
// whoever gives the test), which that type has not.
func imageConfig(s storage.Store, id string) (*ocispec.Image, *Healthcheck, error) {
	raw, err := image.RawConfig(s, id)
	if err != nil {
		return nil, nil, err
	}
	var img ocispec.Image
	var docker struct {
		Config struct {
			Healthcheck *Healthcheck `json:"Healthcheck"`
			Shell       []string     `json:"Shell"`
		} `json:"config"`
	}
	if err := json.Unmarshal(raw, &img); err != nil {
		return nil, nil, fmt.Errorf("image %s: config: %w", short(id), err)
	}
	if err := json.Unmarshal(raw, &docker); err != nil {
		return nil, nil, fmt.Errorf("image %s: config: %w", short(id), err)
	}
	health := docker.Config.Healthcheck
	if health == nil {
		health = &Healthcheck{}
	}
	health.Shell = docker.Config.Shell
	return &img, health, nil
}

// creatorMark names this process in the storage record until berth's own
// record is written: a record without ours whose creator is dead was left
// by a berth killed in the middle of create (see List).
func creatorMark() string {
	start, _, _ := rtstate.ProcessStart(os.Getpid())
	return fmt.Sprintf("creating %d %d", os.Getpid(), start)
}

// abandoned tells whether a storage container's creator died before
// writing berth's record.
func abandoned(metadata string) bool {
	var pid int
	var start uint64
	if n, _ := fmt.Sscanf(metadata, "creating %d %d", &pid, &start); n != 2 {
		return false
	}
	return !rtstate.Alive(pid, start)
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var (
	adjectives = []string{"brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nimble", "proud", "quiet", "swift", "tidy", "vivid", "witty", "zen"}
	nouns      = []string{"anchor", "buoy", "cove", "dock", "ferry", "harbor", "jetty", "keel", "lagoon", "mast", "pier", "quay", "rudder", "sail", "tide", "wharf"}
)

// randomName is docker-like: adjective_noun with a number against clashes.
func randomName() string {
	pick := func(l []string) string {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(l))))
		return l[n.Int64()]
	}
	n, _ := rand.Int(rand.Reader, big.NewInt(10000))
	return fmt.Sprintf("%s_%s%d", pick(adjectives), pick(nouns), n.Int64())
}

// tiniPath is Debian's static tini, bind-mounted as docker mounts its init.
const tiniPath = "/usr/bin/tini-static"

// UseInit runs the command under tini at /dev/init, as docker run --init.
func UseInit(b *bundle.Options) error {
	if _, err := os.Stat(tiniPath); err != nil {
		return fmt.Errorf("--init needs %s (apt-get install tini): %w", tiniPath, err)
	}
	b.Binds = append(b.Binds, tiniPath+":/dev/init:ro")
	b.Init = "/dev/init"
	return nil
}
