package main

import (
	"reflect"
	"testing"
	"time"

	"github.com/perfhound/perfhound/agent/config"
	"github.com/perfhound/perfhound/analyzer/regress"
)

// TestDetectorOptions: the default config runs the detector's defaults;
// regressions.min_share, fdr, min_change and base_window set what they
// say (a reload rebuilds the detector when they change).
func TestDetectorOptions(t *testing.T) {
	if got := live(config.Default()).Regressions.Detector; !reflect.DeepEqual(got, regress.DefaultOptions()) {
		t.Errorf("the default config's detector options %+v\nwant regress.DefaultOptions() %+v", got, regress.DefaultOptions())
	}
	cfg := config.Default()
	cfg.Regressions.MinShare, cfg.Regressions.FDR, cfg.Regressions.MinChange = 0.02, 0.001, 0.1
	cfg.Regressions.BaseWindow = config.Duration(time.Hour)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	want := regress.DefaultOptions()
	want.Version.MinShare, want.Trend.MinShare = 0.02, 0.02
	want.Version.FDR, want.Trend.FDR = 0.001, 0.001
	want.Version.MinRelChange, want.Trend.MinRelChange = 0.1, 0.1
	want.Version.BaseWindow = time.Hour
	if got := live(cfg).Regressions.Detector; !reflect.DeepEqual(got, want) {
		t.Errorf("detector options %+v\nwant %+v", got, want)
	}
}
