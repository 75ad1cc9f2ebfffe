package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

func createClients(t *testing.T, s *Storage, prefix string, n int, name string) {
	t.Helper()
	for i := range n {
		c := storage.Client{ID: fmt.Sprintf("%s-%04d", prefix, i), Name: name, RedirectURIs: []string{"https://app.example.com/cb"}}
		if err := s.CreateClient(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
}

// A backup taken while writers run is a database bbolt checks clean, 0600,
// holding everything written before it began.
func TestBackupWhileWriting(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "dingbridge.db"))
	createClients(t, s, "before", 100, "written before the backup")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a server carrying on meanwhile
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = s.CreateClient(t.Context(), storage.Client{ID: fmt.Sprintf("during-%d", i), Name: "x"})
		}
	}()
	copyPath := filepath.Join(dir, "backup.db")
	var written int64
	err := WriteFile(copyPath, func(w *os.File) error {
		var err error
		written, err = s.Backup(t.Context(), w)
		return err
	})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	fi, err := os.Stat(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != written || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup is %d bytes, mode %o; Backup said %d bytes, want mode 600", fi.Size(), fi.Mode().Perm(), written)
	}
	if err := Check(copyPath); err != nil {
		t.Fatalf("check the backup: %v", err)
	}
	restored := openTest(t, copyPath)
	for i := range 100 {
		id := fmt.Sprintf("before-%04d", i)
		if c, err := restored.GetClient(t.Context(), id); err != nil || c.Name != "written before the backup" {
			t.Fatalf("client %s in the backup: %+v, %v", id, c, err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".backup.db.tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// A failed write leaves the destination as it was and no temporary file.
func TestWriteFileFailureKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "backup.db")
	if err := os.WriteFile(path, []byte("the previous backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	err := WriteFile(path, func(w *os.File) error {
		_, _ = w.Write([]byte("half a copy"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WriteFile: %v, want the fill error", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "the previous backup" {
		t.Errorf("destination now holds %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files in the folder, want only the old backup", len(entries))
	}
}

func TestCheckRefusesWhatIsNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("x", 8192)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Check(path); err == nil {
		t.Error("Check accepted a file of x's")
	}
}

// After a burst of records that are gone again, Compact gives the space back and
// keeps what is live.
func TestCompactReclaimsSpace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dingbridge.db")
	s, err := Open(path, Options{NoSync: true}) // thousands of commits; their fsyncs are not the point
	if err != nil {
		t.Fatal(err)
	}
	createClients(t, s, "burst", 3000, strings.Repeat("a long name to take up pages ", 20))
	for i := range 2990 {
		if err := s.DeleteClient(t.Context(), fmt.Sprintf("burst-%04d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, after, err := Compact(path, 0)
	if err != nil {
		t.Fatalf("compact: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if after >= before || fi.Size() != after || fi.Mode().Perm() != 0o600 {
		t.Errorf("before %d, after %d, file %d bytes mode %o; want smaller, the file as reported, 0600", before, after, fi.Size(), fi.Mode().Perm())
	}
	if err := Check(path); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	clients, err := s.ListClients(t.Context())
	if err != nil || len(clients) != 10 || clients[0].ID != "burst-2990" {
		t.Errorf("after compaction: %d clients (%v), want burst-2990…burst-2999", len(clients), err)
	}
}

func TestCompactRefusedWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dingbridge.db")
	s := openTest(t, path)
	createClients(t, s, "c", 3, "x")
	fi, _ := os.Stat(path)
	if _, _, err := Compact(path, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("compact of an open database: %v, want ErrLocked", err)
	}
	if now, _ := os.Stat(path); !os.SameFile(fi, now) {
		t.Error("the open database's file was replaced")
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("%d files in the folder, want the database alone", len(entries))
	}
}

// A process that was waiting for the lock while Compact replaced the file opens
// the new file, not the old one nobody will ever read again.
func TestOpenAfterTheFileWasReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dingbridge.db")
	old := openTest(t, path)
	createClients(t, old, "old", 1, "x")

	replacement := filepath.Join(dir, "new.db")
	s := openTest(t, replacement)
	createClients(t, s, "new", 1, "x")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	opened := make(chan *Storage)
	go func() {
		s, err := Open(path, Options{Timeout: 10 * time.Second})
		if err != nil {
			t.Error(err)
		}
		opened <- s
	}()
	time.Sleep(100 * time.Millisecond) // let it reach the lock (if not, it opens the new file directly)
	if err := os.Rename(replacement, path); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s = <-opened
	if s == nil {
		return
	}
	defer s.Close()
	if _, err := s.GetClient(t.Context(), "new-0000"); err != nil {
		t.Errorf("the waiting Open got the replaced file: %v", err)
	}
}

// A stopped database is copied read-only; a running one's lock is respected.
func TestBackupFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dingbridge.db")
	s := openTest(t, path)
	createClients(t, s, "c", 3, "x")
	var buf bytes.Buffer
	if _, err := BackupFile(path, 100*time.Millisecond, &buf); !errors.Is(err, ErrLocked) {
		t.Errorf("backup of an open database's file: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	copyPath := filepath.Join(dir, "copy.db")
	err := WriteFile(copyPath, func(f *os.File) error {
		_, err := BackupFile(path, 0, f)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the backup changed the database file")
	}
	restored := openTest(t, copyPath)
	if _, err := restored.GetClient(t.Context(), "c-0002"); err != nil {
		t.Errorf("client in the copy: %v", err)
	}
}
