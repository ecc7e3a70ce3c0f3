package e2e

import (
	"time"

	"github.com/omnisync/omnisync/shared/hlc"
)

func nowHLC() hlc.Timestamp { return hlc.Timestamp{Wall: time.Now().UnixMilli()} }
