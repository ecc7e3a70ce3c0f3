package console

import (
	"fmt"
	"html/template"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/api"
	"github.com/omnisync/omnisync/cloud/internal/store"
)

// SkewAlert is the clock skew (either way) past which the console flags
// a device, as the OmniClockSkew alert in deploy/prometheus does: its
// events' stamps, and so the order in which the hub applies its reports,
// are off by that much.
const SkewAlert = 5 * time.Minute

// deviceHealth is one device's sync health as the store page and the
// overview show it.
type deviceHealth struct {
	store.DeviceStatus
	// Online: a heartbeat within api.DefaultConnectedWithin.
	Online bool
	// Lag is how old the oldest event the hub has not applied is, as the
	// agent last reported it (0: caught up), as GET /v1/stores says.
	Lag     time.Duration
	SkewBad bool
	// UnsyncedAge is the age now of the oldest sale the hub has not
	// confirmed; UnsyncedAlert says it passed Options.UnsyncedAlert.
	UnsyncedAge   time.Duration
	UnsyncedAlert bool
}

// healthView is the devices table: the devices, and whether it names
// their stores (the overview) or not (a store's page).
type healthView struct {
	ShowStore bool
	Now       time.Time
	Devices   []deviceHealth
}

// health is the sync health of devs as of now.
func (c *Console) health(devs []store.DeviceStatus, now time.Time) []deviceHealth {
	out := make([]deviceHealth, 0, len(devs))
	for _, d := range devs {
		h := deviceHealth{DeviceStatus: d}
		h.Online = !d.LastHeartbeat.IsZero() && now.Sub(d.LastHeartbeat) <= api.DefaultConnectedWithin
		if d.Backlog > 0 {
			h.Lag = d.OldestUnackedAge
		}
		h.SkewBad = d.ClockSkew > SkewAlert || d.ClockSkew < -SkewAlert
		h.UnsyncedAge = d.Unsynced.AgeAt(d.LastHeartbeat, now).Round(time.Second)
		h.UnsyncedAlert = d.Unsynced.Count > 0 && h.UnsyncedAge > c.o.UnsyncedAlert
		out = append(out, h)
	}
	return out
}

// signed renders a clock skew: its sign always, to the millisecond
// (heartbeats carry milliseconds), "0" for none.
func signed(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d > 0:
		return "+" + d.Round(time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// ago renders how long before now t was: "never" for the zero time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}

// sinceAt renders a point in time as its UTC clock time and its age:
// "14:02:31 UTC, 3m4s ago" (the date too when not today).
func sinceAt(now, t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	t = t.UTC()
	layout := "15:04:05"
	if y, m, d := t.Date(); y != now.UTC().Year() || m != now.UTC().Month() || d != now.UTC().Day() {
		layout = "2006-01-02 15:04:05"
	}
	return fmt.Sprintf("%s UTC, %s", t.Format(layout), ago(now, t))
}

func init() {
	template.Must(pages.New("devices").Parse(devicesTemplate))
}

// devicesTemplate is the devices table ("devices", on a healthView): per
// device its connection, lag, backlog, clock skew, the money it holds not
// yet synced, and its peripherals.
const devicesTemplate = `<div class="scroll"><table id="devices"><tr>{{if .ShowStore}}<th>store</th>{{end}}<th>device</th><th>state</th><th class="num">applied</th><th class="num">backlog</th><th>sync lag</th><th>clock skew</th><th>not yet synced</th><th>last event</th><th>last heartbeat</th><th>peripherals</th></tr>
{{range .Devices}}<tr data-device="{{.Store}}/{{.Device}}">{{if $.ShowStore}}<td><a href="` + StorePath + `{{.Store}}">{{.Store}}</a></td>{{end}}<td>{{.Device}}</td>
<td>{{if .Online}}<span class="ok">connected</span>{{else}}<span class="bad">offline</span>{{end}}{{with .Version}}<small class="muted">{{.}}</small>{{end}}</td>
<td class="num">{{.EventsApplied}}</td><td class="num">{{.Backlog}}</td>
<td class="lag">{{if .Lag}}{{.Lag}}{{else}}<span class="ok">caught up</span>{{end}}</td>
<td class="skew{{if .SkewBad}} bad{{end}}">{{signed .ClockSkew}}</td>
<td class="unsynced{{if .UnsyncedAlert}} bad{{end}}">{{if .Unsynced.Count}}{{.Unsynced.Count}} sale{{if ne .Unsynced.Count 1}}s{{end}} · {{amount .Unsynced.Value}}<small>oldest {{.UnsyncedAge}}</small>{{else}}<span class="ok">none</span>{{end}}</td>
<td>{{ago $.Now .LastEventAt}}</td><td>{{ago $.Now .LastHeartbeat}}</td>
<td class="periphs">{{range .Peripherals}}<div class="periph" data-peripheral="{{.Name}}" data-state="{{.State}}"><span class="{{if .Working}}ok{{else}}bad{{end}}">{{.Name}}: {{if .Working}}connected{{else}}{{.State}}{{end}}</span><small>since {{sinceAt $.Now .Since}}</small>{{if .Detail}}<small class="bad">{{.Detail}}</small>{{else if .LastError}}<small class="muted">last error {{ago $.Now .LastErrorAt}}: {{.LastError}}</small>{{end}}</div>{{else}}<span class="muted">none reported</span>{{end}}</td></tr>
{{else}}<tr><td colspan="{{if .ShowStore}}11{{else}}10{{end}}">No device has reported yet.</td></tr>{{end}}
</table></div>
<p class="muted">Sync lag: the age of the oldest event a device has not had applied here. Clock skew: the device's clock against the hub's (flagged past 5m). Not yet synced: sales the device holds that HQ has not confirmed, valued at their prices, flagged when older than the hub's --unsynced-sale-alert. Peripherals: as the device's last device_status report says.</p>`
