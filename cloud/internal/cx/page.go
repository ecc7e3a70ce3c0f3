package cx

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/auth"
	"github.com/omnisync/omnisync/cloud/internal/rfm"
	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/cloud/internal/surveys"
)

// The HQ page /insights: survey trends by week with their confidence
// bands and latest comments (redacted), RFM segments with their sizes and
// movement, the CLV distribution, and (for those who may see them) the
// automation's rules with their deliveries. Server-rendered, charts as
// inline SVG.

type surveyView struct {
	ID, Kind, Question string
	Score, Low, High   string
	Responses          int
	Trend              template.HTML
	Comments           []Comment
}

type pageData struct {
	User, Err      string
	Surveys        []surveyView
	Segments       template.HTML
	SegmentsAt     string
	Customers      int
	Movement       []movementView
	AOV            string
	CLV            template.HTML
	CLVNote        string
	ShowAutomation bool
	Rules          template.HTML
	Jobs           []store.JobRecord
}

type movementView struct {
	From, To  string
	Customers int
}

var pageTmpl = template.Must(template.New("insights").Funcs(template.FuncMap{
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Customers · omnisync HQ</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d2733;max-width:62rem}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #dde;padding-bottom:.3rem}
h3{font-size:1rem;margin-bottom:.2rem}.meta{color:#5b6573;font-size:.9rem}
.comment{border-left:3px solid #dde;padding:.2rem .6rem;margin:.4rem 0}
table{border-collapse:collapse;font-size:.9rem}td,th{padding:.25rem .6rem;border-bottom:1px solid #eef;text-align:left}
.dead{color:#b3261e}.skipped{color:#8a6d00}.done{color:#1f7a3a}.bad{color:#b3261e;font-weight:600}
.legend span{display:inline-block;margin-right:1rem}.sw{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}
</style></head><body>
<h1>Customers</h1>
<p><a href="/">← HQ</a> · <span id="user">{{.User}}</span></p>
{{if .Err}}<p class="bad" id="error">{{.Err}}</p>{{end}}
<h2>Surveys</h2>
{{range .Surveys}}<section class="survey" id="survey-{{.ID}}">
<h3>{{.Question}}</h3>
<p class="meta">{{.Kind}} · {{.Responses}} answers{{if .Score}} · score <strong class="score">{{.Score}}</strong> (95% CI {{.Low}} to {{.High}}){{end}}</p>
{{.Trend}}
{{range .Comments}}<div class="comment"><span class="meta">{{if .Score}}{{.Score}} · {{end}}{{.Store}} · {{.Channel}} · {{when .At}}</span><br>{{.Comment}}</div>{{end}}
</section>{{else}}<p id="no-surveys">No surveys defined.</p>{{end}}
<h2>Segments</h2>
{{if .Segments}}<p class="meta">{{.Customers}} customers · as of {{.SegmentsAt}} · {{.AOV}}</p>
{{.Segments}}
{{if .Movement}}<h3>Movement since the sweep before</h3><table id="movement"><tr><th>from</th><th>to</th><th>customers</th></tr>
{{range .Movement}}<tr><td>{{.From}}</td><td>{{.To}}</td><td>{{.Customers}}</td></tr>{{end}}</table>{{end}}
{{else}}<p class="meta" id="no-segments">No customer analytics yet.</p>{{end}}
<h2>Customer lifetime value</h2>
<p class="meta" id="clv-note">{{.CLVNote}}</p>
{{.CLV}}
{{if .ShowAutomation}}<h2>Automation</h2>
<p class="legend"><span><i class="sw" style="background:#1f7a3a"></i>delivered</span><span><i class="sw" style="background:#c9a227"></i>skipped</span><span><i class="sw" style="background:#b3261e"></i>dead</span><span><i class="sw" style="background:#9fb3d1"></i>scheduled</span></p>
{{.Rules}}
<table id="jobs"><tr><th>when</th><th>rule</th><th>trigger</th><th>state</th><th>attempts</th><th>reason</th></tr>
{{range .Jobs}}<tr><td>{{when .Updated}}</td><td>{{.Rule}}</td><td>{{.Trigger}}</td><td class="{{.State}}">{{.State}}</td><td>{{.Attempts}}</td><td>{{.Reason}}</td></tr>{{end}}
</table>{{end}}
</body></html>`))

func (x *Web) page(w http.ResponseWriter, r *http.Request) {
	p := auth.From(r.Context())
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	d := pageData{User: p.User, ShowAutomation: p.Can(auth.AutomationRead)}
	if err := x.fillSurveys(ctx, &d); err != nil {
		d.Err = "Surveys could not be read; see the hub's log."
		x.o.Logger.Error("cx: page surveys", "err", err)
	}
	x.fillInsights(&d)
	if d.ShowAutomation {
		if err := x.fillAutomation(ctx, &d); err != nil {
			d.Err = "Automation could not be read; see the hub's log."
			x.o.Logger.Error("cx: page automation", "err", err)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = pageTmpl.Execute(w, d)
}

func (x *Web) fillSurveys(ctx context.Context, d *pageData) error {
	defs, err := x.o.Store.Surveys(ctx)
	if err != nil {
		return err
	}
	since := time.Now().AddDate(0, 0, -7*26)
	for _, def := range defs {
		as, err := x.o.Store.SurveyAnswers(ctx, def.ID, since, false)
		if err != nil {
			return err
		}
		for i := range as {
			as[i].Respondent = fmt.Sprint(i)
		}
		v := surveyView{ID: def.ID, Kind: string(def.Kind), Question: def.Question}
		if all, err := surveys.Aggregate(as, 0, 0.95); err == nil && len(all) == 1 {
			v.Responses = all[0].Responses
			v.Score, v.Low, v.High = num(all[0].Score), num(all[0].Low), num(all[0].High)
		}
		weekly, err := surveys.Aggregate(as, surveys.ByWeek, 0.95)
		if err != nil {
			return err
		}
		lo, hi := scaleOf(def.Kind)
		var pts []point
		for _, res := range weekly {
			pts = append(pts, point{Label: res.Week.String(), Y: res.Score, Lo: res.Low, Hi: res.High})
		}
		v.Trend = lineChart("trend-"+def.ID, pts, lo, hi)
		if v.Comments, err = x.commentList(ctx, def.ID, false, 8); err != nil {
			return err
		}
		d.Surveys = append(d.Surveys, v)
	}
	return nil
}

// scaleOf is the range a survey's score is drawn on.
func scaleOf(k surveys.Kind) (lo, hi float64) {
	switch k {
	case surveys.NPS:
		return -100, 100
	case surveys.CES:
		return 1, 7
	}
	return 0, 100
}

var segmentColor = map[rfm.Segment]string{
	rfm.Champions: "#1f7a3a", rfm.LoyalCustomers: "#3a9a55", rfm.PotentialLoyalists: "#6bb77b", rfm.NewCustomers: "#9fd3a9",
	rfm.Promising: "#9fb3d1", rfm.NeedAttention: "#c9a227", rfm.AboutToSleep: "#d9b84e", rfm.AtRisk: "#d9822b",
	rfm.CantLoseThem: "#c0392b", rfm.Hibernating: "#8d6e63", rfm.Lost: "#7f8c8d",
}

func (x *Web) fillInsights(d *pageData) {
	if x.o.Insights == nil {
		d.CLVNote = "Customer analytics are not running on this hub."
		return
	}
	segs := x.o.Insights.Segments()
	if segs.Customers > 0 {
		var bars []bar
		for _, s := range segs.Segments {
			bars = append(bars, bar{Label: s.Segment.Title(), Parts: []part{{Name: s.Segment.Title(), Value: float64(s.Customers), Color: segmentColor[s.Segment]}}})
		}
		d.Segments = barChart("segments", bars)
		d.SegmentsAt = segs.At.UTC().Format("2006-01-02 15:04")
		d.Customers = segs.Customers
		for i, m := range segs.Movement {
			if i == 10 {
				break
			}
			d.Movement = append(d.Movement, movementView{From: m.From.Title(), To: m.To.Title(), Customers: m.Customers})
		}
		a := x.o.Insights.AOV()
		d.AOV = fmt.Sprintf("AOV %s over %d orders", num(a.Total.AOV/100), a.Total.Orders)
	}
	rep, err := x.o.Insights.CLV()
	if err != nil {
		d.CLVNote = "No fit yet: " + err.Error()
		return
	}
	var labels []string
	var values []float64
	for _, b := range rep.Distribution {
		labels = append(labels, num(b.Low/100))
		values = append(values, float64(b.Customers))
	}
	d.CLV = columnChart("clv", labels, values)
	pf, sf := rep.Fit.Purchases, rep.Fit.Spend
	d.CLVNote = fmt.Sprintf("Expected value over the next year, %d customers, mean %s. BG/NBD r=%.3g α=%.3g a=%.3g b=%.3g (log-likelihood %.6g); Gamma-Gamma p=%.3g q=%.3g γ=%.3g; fitted %s in %s.",
		rep.Customers, num(rep.Mean/100), pf.R, pf.Alpha, pf.A, pf.B, pf.LogLikelihood, sf.P, sf.Q, sf.Gamma,
		rep.FittedAt.UTC().Format("2006-01-02 15:04"), rep.Took.Round(time.Millisecond))
}

func (x *Web) fillAutomation(ctx context.Context, d *pageData) error {
	stats, err := x.o.Store.JobStats(ctx)
	if err != nil {
		return err
	}
	var bars []bar
	for _, s := range stats {
		bars = append(bars, bar{Label: s.Rule, Parts: []part{
			{"delivered", float64(s.Done), "#1f7a3a"}, {"skipped", float64(s.Skipped), "#c9a227"},
			{"dead", float64(s.Dead), "#b3261e"}, {"scheduled", float64(s.Scheduled), "#9fb3d1"}}})
	}
	d.Rules = barChart("rules", bars)
	d.Jobs, err = x.o.Store.Jobs(ctx, store.JobQuery{Limit: 20})
	return err
}
