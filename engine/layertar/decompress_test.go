package layertar

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"
)

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestDecompressCloseEarly: a stream closed after a few bytes is read to
// its end first (pgzip's read-ahead must be done before storage recycles
// its buffer), and closing does not fail.
func TestDecompressCloseEarly(t *testing.T) {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	for i := 0; i < 1<<16; i++ {
		w.Write([]byte{byte(i), byte(i >> 8), byte(i * 7), byte(i * 13)})
	}
	w.Close()
	for i := 0; i < 20; i++ {
		src := &countingReader{r: bytes.NewReader(gz.Bytes())}
		rc, err := Decompress(src)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(rc, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		if err := rc.Close(); err != nil {
			t.Fatal(err)
		}
		if src.n != gz.Len() {
			t.Fatalf("closed after reading %d of %d compressed bytes", src.n, gz.Len())
		}
	}
}
