package main

import (
	"os"

	"github.com/berth-containers/berth/libcontainer"
)

// runInit is the hidden init mode: it returns only by exiting.
func runInit() {
	libcontainer.Init()
	os.Exit(1)
}
