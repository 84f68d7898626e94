package image

import "io"

// Progress reports the transfer of each layer; the CLI draws it.
type Progress interface {
	// Layer starts the report of one blob; size may be unknown (-1).
	Layer(digest string, size int64) LayerProgress
}

// LayerProgress is the report of one blob.
type LayerProgress interface {
	// Reader counts what passes through r.
	Reader(r io.Reader) io.Reader
	// Done ends the report with a status such as "Pull complete".
	Done(status string)
}

type noProgress struct{}

func (noProgress) Layer(string, int64) LayerProgress { return noProgress{} }
func (noProgress) Reader(r io.Reader) io.Reader      { return r }
func (noProgress) Done(string)                       {}

func orNone(p Progress) Progress {
	if p == nil {
		return noProgress{}
	}
	return p
}
