package capabilities

import (
	"sort"
	"strings"

	"github.com/moby/sys/capability"
)

// Names lists the capabilities the running kernel supports, for the
// runtime's features document.
func Names() []string {
	last, err := capability.LastCap()
	var names []string
	for _, c := range capability.ListKnown() {
		if err == nil && c > last {
			continue
		}
		names = append(names, "CAP_"+strings.ToUpper(c.String()))
	}
	sort.Strings(names)
	return names
}
