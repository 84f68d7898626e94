package main

import (
	"log/slog"
	"os"

	"github.com/berth-containers/berth/libcontainer"
)

// runInit is the hidden init mode: it returns only by exiting.
func runInit() {
	// The init's stderr is the container's: nothing of ours may go there.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	libcontainer.Init()
	os.Exit(1)
}
