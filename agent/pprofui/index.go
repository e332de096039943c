package pprofui

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// indexPage is the data of the index template.
type indexPage struct {
	Target   string
	Meta     observation.Meta
	End      time.Time
	Duration time.Duration // rounded for reading
	Profiles []indexProfile
	Missing  []observation.Missing
	NoDot    bool // Graphviz's dot is not on PATH: the Graph view will fail
}

type indexProfile struct {
	Index   int
	Kind    string
	Source  string
	Labels  string
	Samples int
	Types   []indexType
	Empty   bool // no data at all: no UI to link to
}

type indexType struct {
	Name    string // type/unit
	Total   string // sum over the samples, in the unit
	Default bool   // what pprof shows unless ?si= says otherwise
}

var indexTemplate = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>perfhound: {{.Target}}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #a50; }
code { font-size: 0.95em; }
</style>
</head>
<body>
<h1>{{.Target}}</h1>
<p>Host <code>{{.Meta.Host}}</code>{{with .Meta.Kernel}}, kernel <code>{{.}}</code>{{end}}{{with .Meta.CPUs}}, {{.}} CPUs{{end}}.
Window {{.Meta.Start.UTC.Format "2006-01-02 15:04:05.000"}} to {{.End.UTC.Format "15:04:05.000"}} UTC ({{.Duration}}).</p>
{{if .NoDot}}<p class="note">Graphviz's <code>dot</code> is not on PATH: the Graph view will fail; the others work.</p>{{end}}
<table>
<tr><th>#</th><th>kind</th><th>source</th><th>labels</th><th class="num">samples</th><th>sample types (total)</th><th>views</th></tr>
{{range .Profiles}}<tr>
<td>{{.Index}}</td><td>{{.Kind}}</td><td>{{.Source}}</td><td>{{.Labels}}</td><td class="num">{{.Samples}}</td>
<td>{{range .Types}}<code>{{.Name}}</code> {{.Total}}{{if .Default}} (default){{end}}<br>{{end}}</td>
<td>{{if .Empty}}no data{{else}}{{$i := .Index}}<a href="profile/{{$i}}/flamegraph">flame graph</a>
 <a href="profile/{{$i}}/top">top</a> <a href="profile/{{$i}}/graph">graph</a>
 <a href="profile/{{$i}}/download">download</a>{{end}}</td>
</tr>
{{else}}<tr><td colspan="7">This observation has no profiles.</td></tr>
{{end}}</table>
{{if .Missing}}<h2>Not collected</h2>
<ul>{{range .Missing}}<li><code>{{.Signal}}</code>: {{.Reason}}</li>{{end}}</ul>{{end}}
</body>
</html>
`))

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	m := s.obs.Meta
	page := indexPage{
		Target:   m.Title(),
		Meta:     m,
		End:      m.Start.Add(m.Duration),
		Duration: m.Duration.Round(time.Millisecond),
		Missing:  s.obs.Missing,
	}
	if _, err := exec.LookPath("dot"); err != nil {
		page.NoDot = true
	}
	for i, p := range s.obs.Profiles {
		page.Profiles = append(page.Profiles, describe(i, p))
	}
	var buf bytes.Buffer
	if err := indexTemplate.Execute(&buf, page); err != nil {
		http.Error(w, "rendering the index: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

func describe(i int, p observation.Profile) indexProfile {
	ip := indexProfile{Index: i, Kind: string(p.Kind), Source: string(p.Source), Labels: labelString(p.Labels)}
	pp := p.Profile
	if pp == nil {
		ip.Empty = true
		return ip
	}
	ip.Samples = len(pp.Sample)
	totals := make([]int64, len(pp.SampleType))
	for _, s := range pp.Sample {
		for j := range totals {
			if j < len(s.Value) {
				totals[j] += s.Value[j]
			}
		}
	}
	def := defaultSampleType(pp)
	for j, st := range pp.SampleType {
		ip.Types = append(ip.Types, indexType{
			Name:    st.Type + "/" + st.Unit,
			Total:   formatValue(totals[j], st.Unit),
			Default: j == def,
		})
	}
	return ip
}

// defaultSampleType is the index of the sample type pprof shows first: the
// profile's DefaultSampleType if it names one, else the last.
func defaultSampleType(p *profile.Profile) int {
	for j, st := range p.SampleType {
		if st.Type == p.DefaultSampleType {
			return j
		}
	}
	return len(p.SampleType) - 1
}

func formatValue(v int64, unit string) string {
	switch unit {
	case "nanoseconds":
		return time.Duration(v).Round(time.Millisecond).String()
	case "bytes":
		const k = 1024
		f, suffix := float64(v), "B"
		for _, s := range []string{"KiB", "MiB", "GiB", "TiB"} {
			if f < k && f > -k {
				break
			}
			f, suffix = f/k, s
		}
		if suffix == "B" {
			return fmt.Sprintf("%d B", v)
		}
		return fmt.Sprintf("%.1f %s", f, suffix)
	}
	return fmt.Sprintf("%d %s", v, unit)
}

func labelString(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(k + "=" + l[k])
	}
	return b.String()
}
