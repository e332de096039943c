package relabel_test

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/perfhound/perfhound/agent/forward/relabel"
)

// A sink's relabeling as its YAML gives it, applied to a window's labels
// before the sink sends it.
func ExampleRelabeler_Apply() {
	var cfg relabel.Config
	err := yaml.Unmarshal([]byte(`
relabel_configs:
  - source_labels: [service_name]
    regex: 'test-.*'
    action: drop
  - source_labels: [unit]
    regex: '(.*)\.service'
    target_label: systemd_unit
  - regex: 'unit|exe'
    action: labeldrop
max_series: 1000
`), &cfg)
	if err != nil {
		panic(err)
	}
	r, err := relabel.New(cfg)
	if err != nil {
		panic(err)
	}
	end := time.Date(2026, 12, 5, 10, 0, 10, 0, time.UTC)
	labels, keep, reason := r.Apply(map[string]string{
		"service_name": "shop", "unit": "shop.service", "exe": "/opt/shop/bin/shop",
	}, end)
	fmt.Printf("%v %v %q\n", labels, keep, reason)
	labels, keep, reason = r.Apply(map[string]string{"service_name": "test-shop"}, end)
	fmt.Printf("%v %v %q\n", labels, keep, reason)
	// Output:
	// map[service_name:shop systemd_unit:shop] true ""
	// map[] false "relabel_dropped"
}
