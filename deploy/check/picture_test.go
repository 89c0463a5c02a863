package check

import (
	"encoding/json"
	"image/color"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// pictureEnv names the PNG that TestDashboardAgainstPrometheus draws of
// some of the dashboard's panels from its Prometheus, after a longer
// load, when set (deploy/grafana/dashboard.png is drawn so):
//
//	JETFLOW_DASHBOARD_PNG=$PWD/../grafana/dashboard.png go test -run AgainstPrometheus
const pictureEnv = "JETFLOW_DASHBOARD_PNG"

// pictured are the panels of the picture, in reading order.
var pictured = []string{
	"Completions by status / min", "Open instances by orchestrator and status", "Backlog",
	"Completed / s", "Duration of completed executions", "Turns / s by result",
	"Turn schedule-to-start p95", "Executions / s by outcome", "Activity slots",
	"Pending by consumer", "Timer lateness", "Requests / s",
}

type rangeSeries struct {
	Metric map[string]string
	Values [][2]any
}

func (p prom) queryRange(t *testing.T, expr string, from, to time.Time) []rangeSeries {
	t.Helper()
	v := url.Values{"query": {expr}, "start": {strconv.FormatInt(from.Unix(), 10)},
		"end": {strconv.FormatInt(to.Unix(), 10)}, "step": {"2"}}
	resp, err := http.Get(p.base + "/api/v1/query_range?" + v.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	var r struct {
		Status, Error string
		Data          struct{ Result []rangeSeries }
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	require.Equal(t, "success", r.Status, "%s: %s", expr, r.Error)
	return r.Data.Result
}

var legendLabel = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)

// drawPicture draws the pictured panels over [from, to] into file.
func drawPicture(t *testing.T, p prom, from, to time.Time, file string) {
	t.Helper()
	byTitle := map[string][]Target{}
	for _, r := range Rows {
		for _, pn := range r.Panels {
			byTitle[pn.Title] = pn.Targets
		}
	}
	const cols = 3
	rows := (len(pictured) + cols - 1) / cols
	plots := make([][]*plot.Plot, rows)
	for i := range plots {
		plots[i] = make([]*plot.Plot, cols)
	}
	for i, title := range pictured {
		targets, ok := byTitle[title]
		require.True(t, ok, "no panel %q", title)
		pl := plot.New()
		pl.Title.Text = title
		pl.X.Tick.Marker = plot.TimeTicks{Format: "15:04"}
		pl.Legend.Top = true
		pl.Legend.Left = true
		pl.Add(plotter.NewGrid())
		n := 0
		for _, tg := range targets {
			for _, s := range p.queryRange(t, substitute(tg.Expr, "20s", "10m"), from, to) {
				var xys plotter.XYs
				for _, v := range s.Values {
					ts, _ := v[0].(float64)
					str, _ := v[1].(string)
					y, err := strconv.ParseFloat(str, 64)
					if err != nil || math.IsNaN(y) || math.IsInf(y, 0) {
						continue
					}
					xys = append(xys, plotter.XY{X: ts, Y: y})
				}
				if !slices.ContainsFunc(xys, func(xy plotter.XY) bool { return xy.Y != 0 }) {
					continue // all zero: the legend would only grow
				}
				line, err := plotter.NewLine(xys)
				require.NoError(t, err)
				line.Color = plotutil.Color(n)
				line.Width = vg.Points(1.5)
				pl.Add(line)
				if n < 8 {
					name := legendLabel.ReplaceAllStringFunc(tg.Legend, func(m string) string {
						return s.Metric[legendLabel.FindStringSubmatch(m)[1]]
					})
					pl.Legend.Add(name, line)
				}
				n++
			}
		}
		if n == 0 {
			pl.Title.Text += " (no data)"
		}
		pl.Y.Min = 0
		pl.X.Min, pl.X.Max = float64(from.Unix()), float64(to.Unix())
		plots[i/cols][i%cols] = pl
	}
	img := vgimg.New(vg.Points(1500), vg.Points(float64(rows)*300))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(10), PadY: vg.Points(10),
		PadTop: vg.Points(10), PadBottom: vg.Points(10), PadLeft: vg.Points(10), PadRight: vg.Points(10)}
	canvases := plot.Align(plots, tiles, dc)
	for j := range plots {
		for i, pl := range plots[j] {
			if pl != nil {
				pl.Draw(canvases[j][i])
			}
		}
	}
	f, err := os.Create(file)
	require.NoError(t, err)
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	t.Logf("drew %d panels from %s to %s into %s", len(pictured), from.Format(time.TimeOnly), to.Format(time.TimeOnly), file)
}

// pictureLoad runs rounds of the samples for d, leaving some instances
// open, so that the picture has curves.
func pictureLoad(t *testing.T, dev api, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		dev.load()
		for range i % 4 {
			dev.start("SetStatusTest", nil) // left waiting for Done: open instances
			dev.start("FanOutFanIn", 50)
		}
	}
	t.Logf("picture load: %s", d)
}
