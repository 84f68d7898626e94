package main

import (
	"context"
	"fmt"

	units "github.com/docker/go-units"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/image"
	"github.com/berth-containers/berth/engine/volume"
)

func systemPruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "remove stopped containers, unused networks, dangling images, and what a crash left",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove all images no container uses, not only dangling ones"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not ask (berth never asks)"},
			&cli.BoolFlag{Name: "volumes", Usage: "remove unused anonymous volumes too"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error { return systemPrune(c, e) })
		},
	}
}

// systemPrune is docker's system prune, in its order: containers,
// networks, volumes, images. Before the networks, the network state of
// containers that no longer exist (a berth killed in the middle of rm, a
// store cleaned by hand) is torn down: namespaces, veths, iptables rules,
// address leases.
func systemPrune(c *cli.Context, e *env) error {
	ctx := c.Context
	var errs []error
	removed, freed, err := container.Prune(ctx, e.store, nil)
	if err != nil {
		errs = append(errs, err)
	}
	printDeleted(c, "Deleted Containers:", removed)

	m, err := networkManager(c, e)
	if err != nil {
		return err
	}
	if err := repairNetworks(ctx, e, m.Repair); err != nil {
		errs = append(errs, err)
	}
	names, err := m.Prune()
	if err != nil {
		errs = append(errs, err)
	}
	printDeleted(c, "Deleted Networks:", names)

	if c.Bool("volumes") {
		vs, err := openVolumeStore(e.cfg.Storage.Root)
		if err != nil {
			return err
		}
		left, err := container.List(e.store)
		if err != nil {
			return err
		}
		users := make([]volume.User, 0, len(left))
		for _, ct := range left {
			users = append(users, volume.User{Name: ct.Name, Binds: ct.Binds})
		}
		vols, size, err := vs.Prune(vs.InUse(users))
		if err != nil {
			errs = append(errs, err)
		}
		freed += size
		printDeleted(c, "Deleted Volumes:", vols)
	}

	ids, size, err := image.Prune(e.store, c.Bool("all"))
	if err != nil {
		errs = append(errs, err)
	}
	freed += size
	lines := make([]string, len(ids))
	for i, id := range ids {
		lines[i] = "deleted: " + id
	}
	printDeleted(c, "Deleted Images:", lines)
	fmt.Fprintln(c.App.Writer, "Total reclaimed space:", units.HumanSizeWithPrecision(float64(freed), 3))
	if len(errs) > 1 {
		for _, err := range errs[:len(errs)-1] {
			fmt.Fprintln(c.App.ErrWriter, "Error:", err)
		}
	}
	if len(errs) > 0 {
		return errs[len(errs)-1]
	}
	return nil
}

// repairNetworks runs the network manager's Repair with "alive" meaning
// that berth still has a container of that ID. The IDs are listed first;
// one not listed is looked up in the store again, since it may have been
// created since (its sandbox cannot be older than its record).
func repairNetworks(ctx context.Context, e *env, repair func(context.Context, func(string) bool) error) error {
	list, err := container.List(e.store)
	if err != nil {
		return err
	}
	known := make(map[string]bool, len(list))
	for _, ctr := range list {
		known[ctr.ID] = true
	}
	return repair(ctx, func(id string) bool {
		if known[id] {
			return true
		}
		_, err := e.store.Container(id)
		return err == nil
	})
}
