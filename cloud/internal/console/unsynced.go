package console

import (
	"html/template"
	"time"

	"github.com/omnisync/omnisync/cloud/internal/store"
)

// DefaultUnsyncedAlert is the age of a device's oldest unconfirmed sale
// at which the store page warns, when Options.UnsyncedAlert is zero.
const DefaultUnsyncedAlert = 30 * time.Minute

// unsyncedView is the store page's line on the money its devices hold that
// the hub has not confirmed yet.
type unsyncedView struct {
	store.UnsyncedSales
	// Age is the oldest sale's age now; Alert says it passed the limit.
	Age   time.Duration
	Alert bool
	Limit time.Duration
}

func init() {
	template.Must(pages.New("unsynced").Parse(`{{with .Unsynced}}{{if .Count}}<p id="unsynced" class="{{if .Alert}}bad{{else}}muted{{end}}">{{if .Alert}}Warning: {{end}}{{.Count}} sale{{if ne .Count 1}}s{{end}} worth {{amount .Value}} not yet synced to HQ; the oldest is {{.Age}} old{{if .Alert}}, past the {{.Limit}} limit: check the store's connection{{end}}.</p>{{else}}<p id="unsynced" class="ok">Every sale of this store's devices has reached HQ.</p>{{end}}{{end}}`))
}

// unsyncedOf sums what the devices of storeID among devs hold
// unconfirmed, as of now.
func (c *Console) unsyncedOf(devs []store.DeviceStatus, storeID string) unsyncedView {
	now := c.o.Now()
	v := unsyncedView{Limit: c.o.UnsyncedAlert}
	for _, d := range devs {
		if d.Store != storeID {
			continue
		}
		v.UnsyncedSales = v.UnsyncedSales.Add(d.Unsynced)
		v.Age = max(v.Age, d.Unsynced.AgeAt(d.LastHeartbeat, now).Round(time.Second))
	}
	v.Alert = v.Count > 0 && v.Age > v.Limit
	return v
}
