package bolt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the database to w from one read
// transaction (bbolt's Tx.WriteTo): writers carry on meanwhile and the copy is
// the database as of the moment Backup began. It returns the bytes written.
// Ephemeral flow state, which is never in the file, is not in the copy.
func (s *Storage) Backup(ctx context.Context, w io.Writer) (int64, error) {
	// Logins waiting in the write-back are committed first, so the copy has them.
	if err := s.sync(ctx); err != nil {
		return 0, fmt.Errorf("bolt: backup: %w", err)
	}
	var n int64
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("bolt: backup: %w", err)
	}
	return n, nil
}

// BackupFile writes a copy of the stopped database at path to w, opening it
// read-only: nothing in the file changes (no schema upgrade either), and a
// server cannot start writing while the copy is taken. It fails with ErrLocked
// while a process has the file open for writing.
func BackupFile(path string, timeout time.Duration, w io.Writer) (int64, error) {
	if timeout <= 0 {
		timeout = time.Second
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: timeout})
	if errors.Is(err, bbolt.ErrTimeout) {
		return 0, fmt.Errorf("bolt: backup %s: %w", path, ErrLocked)
	}
	if err != nil {
		return 0, fmt.Errorf("bolt: backup %s: %w", path, err)
	}
	defer db.Close()
	var n int64
	err = db.View(func(tx *bbolt.Tx) error {
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("bolt: backup %s: %w", path, err)
	}
	return n, nil
}

// WriteFile writes path safely: fill writes a temporary file (0600) beside it,
// which is fsynced, then renamed over path, and the folder fsynced. A failure
// (fill's too) leaves path as it was and no temporary file behind. It is how
// backups and compactions reach the disk; fill may also reopen the file by its
// name, e.g. to check it.
func WriteFile(path string, fill func(tmp *os.File) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Check opens the database file at path read-only and runs bbolt's consistency
// check over every page: a backup that passes is one bbolt can open and read.
// It fails with ErrLocked while a process has the file open for writing.
func Check(path string) error {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bbolt.ErrTimeout) {
		return fmt.Errorf("bolt: check %s: %w", path, ErrLocked)
	}
	if err != nil {
		return fmt.Errorf("bolt: check %s: %w", path, err)
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte(bucketMeta)) == nil {
			return fmt.Errorf("bolt: check %s: not a dingbridge database (no %s bucket)", path, bucketMeta)
		}
		var problems []error
		for err := range tx.Check() {
			problems = append(problems, err)
		}
		if len(problems) > 0 {
			return fmt.Errorf("bolt: check %s: %w", path, errors.Join(problems...))
		}
		return nil
	})
}
