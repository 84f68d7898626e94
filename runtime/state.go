package main

import (
	"encoding/json"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/libcontainer"
	"github.com/berth-containers/berth/libcontainer/state"
)

// containerState is runc's state output: the runtime-spec state plus
// rootfs, created and owner.
type containerState struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Owner       string            `json:"owner"`
}

func describe(id string, st *state.State, status string) *containerState {
	if st == nil {
		return &containerState{OCIVersion: specVersion, ID: id, Status: status}
	}
	oci := st.OCI(status)
	cs := &containerState{
		OCIVersion: oci.Version, ID: id, Pid: st.Pid, Status: status, Bundle: st.Bundle,
		Rootfs: st.Rootfs, Created: st.Created, Annotations: oci.Annotations, Owner: st.Owner,
	}
	if status == state.Stopped {
		cs.Pid = 0
	}
	return cs
}

var stateCommand = &cli.Command{
	Name:      "state",
	Usage:     "print the state of a container as JSON",
	ArgsUsage: "<container-id>",
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, 1); err != nil {
			return err
		}
		id := c.Args().First()
		st, status, err := libcontainer.Inspect(c.String("root"), id)
		if err != nil {
			return err
		}
		cs := describe(id, st, status)
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(cs)
	},
}
