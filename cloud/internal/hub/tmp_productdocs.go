package hub

import (
	"context"

	"github.com/omnisync/omnisync/cloud/internal/store"
	"github.com/omnisync/omnisync/shared/downsync"
)

// pubStore bridges until the store reads catalog documents.
type pubStore struct{ *store.Store }

func (pubStore) ProductDocs(context.Context, []string) ([]downsync.ProductDoc, error) {
	return nil, nil
}
