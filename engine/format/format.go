// Package format prints lists and objects the way docker does: a table by
// default, a Go template with --format, "table TEMPLATE" for a table of
// one's own columns, and "json".
package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"text/template"
)

var funcs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join":  strings.Join,
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"truncate": func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	},
}

// Parse compiles a user's --format template.
func Parse(text string) (*template.Template, error) {
	t, err := template.New("format").Funcs(funcs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("invalid --format template: %w", err)
	}
	return t, nil
}

// List prints rows (a slice). format is "" (defaultTable is used), "json"
// (one object per line), "table TEMPLATE" or a bare template (no header).
// headers name the table columns by field; other fields get their name in
// capitals.
func List(w io.Writer, format, defaultTable string, headers map[string]string, rows any) error {
	if format == "" {
		format = defaultTable
	}
	v := reflect.ValueOf(rows)
	if format == "json" {
		enc := json.NewEncoder(w)
		for i := 0; i < v.Len(); i++ {
			if err := enc.Encode(v.Index(i).Interface()); err != nil {
				return err
			}
		}
		return nil
	}
	table := strings.HasPrefix(format, "table")
	if table {
		format = strings.TrimSpace(strings.TrimPrefix(format, "table"))
	}
	t, err := Parse(unescape(format) + "\n")
	if err != nil {
		return err
	}
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		out = tw
		if err := t.Execute(tw, headerRow(v.Type().Elem(), headers)); err != nil {
			return fmt.Errorf("format header: %w", err)
		}
	}
	for i := 0; i < v.Len(); i++ {
		if err := t.Execute(out, v.Index(i).Interface()); err != nil {
			return fmt.Errorf("format: %w", err)
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// Object prints one value per item: "json" (or "") prints all as an
// indented JSON array, as docker inspect does; otherwise the template runs
// for each.
func Object(w io.Writer, format string, items []any) error {
	if format == "" || format == "json" {
		b, err := json.MarshalIndent(items, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	t, err := Parse(unescape(format) + "\n")
	if err != nil {
		return err
	}
	for _, it := range items {
		if err := executeObject(t, w, it); err != nil {
			return fmt.Errorf("format: %w", err)
		}
	}
	return nil
}

// executeObject runs t on v, and, as docker does, on v's JSON form when v
// has no such field: templates name JSON keys ({{.Id}}) as often as fields.
func executeObject(t *template.Template, w io.Writer, v any) error {
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err == nil {
		_, err = w.Write(buf.Bytes())
		return err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	// Numbers stay as written: 134217728, not 1.34217728e+08.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return t.Execute(w, v)
	}
	return t.Execute(w, m)
}

// headerRow maps every field of the row type to its column title, so the
// table's own template prints the header line.
func headerRow(t reflect.Type, headers map[string]string) map[string]string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	row := map[string]string{}
	if t.Kind() == reflect.Struct {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i).Name
			row[f] = strings.ToUpper(f)
		}
	}
	for k, v := range headers {
		row[k] = v
	}
	return row
}

// unescape turns the \t and \n a shell user types into real ones.
func unescape(s string) string {
	return strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(s)
}
