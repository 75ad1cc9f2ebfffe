package bolt

import (
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

// A file written before the user index existed gets one when opened, so people
// who logged in before an upgrade are found by their unionid.
func TestOpenIndexesUsersOfAnOlderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dingbridge.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	u := storage.User{Subject: "union-1", UnionID: "union-1", Phone: "+8613800138000"}
	if _, err := s.UpsertUser(t.Context(), u.Subject, func(storage.User, bool) (storage.User, error) { return u, nil }); err != nil {
		t.Fatal(err)
	}
	// What an older binary left: users, no index and no mark.
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket([]byte(bucketUserIndex)); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketMeta)).Delete([]byte(metaUserIndexKey))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, path)
	for _, k := range []storage.UserKey{{UnionID: "union-1"}, {Phone: "+8613800138000"}} {
		users, err := s.FindUsers(t.Context(), k)
		if err != nil || len(users) != 1 || users[0].Subject != "union-1" {
			t.Errorf("FindUsers(%v) after reopening = %v, %v; want union-1", k, users, err)
		}
	}
}
