package bolt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
)

// compactTxSize is how much Compact copies per write transaction: bounded
// memory whatever the size of the file.
const compactTxSize = 64 << 20

// Compact rewrites the stopped database at path with only its live pages
// (bbolt's Compact into a new file, fsynced, renamed over path): a bbolt file
// never shrinks by itself after a burst of short-lived records. It holds the
// file's lock throughout, so it fails with ErrLocked while a server has it open,
// and a server cannot open it halfway. It returns the size before and after.
func Compact(path string, timeout time.Duration) (before, after int64, err error) {
	if timeout <= 0 {
		timeout = time.Second
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, fmt.Errorf("bolt: compact %s: %w", path, err)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("bolt: compact: %w", err)
	}
	before = fi.Size()
	src, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: timeout})
	if errors.Is(err, bbolt.ErrTimeout) {
		return 0, 0, fmt.Errorf("bolt: compact %s: %w", path, ErrLocked)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("bolt: compact %s: %w", path, err)
	}
	defer src.Close()

	// bbolt writes the new file itself; WriteFile's temporary name is only
	// reserved, then reopened by bbolt, and fsynced and renamed when done.
	err = WriteFile(path, func(f *os.File) error {
		tmp := f.Name()
		dst, err := bbolt.Open(tmp, 0o600, &bbolt.Options{Timeout: timeout, NoSync: true, FreelistType: bbolt.FreelistMapType})
		if err != nil {
			return err
		}
		if err := bbolt.Compact(dst, src, compactTxSize); err != nil {
			dst.Close()
			return err
		}
		if err := dst.Sync(); err != nil {
			dst.Close()
			return err
		}
		if err := dst.Close(); err != nil {
			return err
		}
		fi, err := os.Stat(tmp)
		if err != nil {
			return err
		}
		after = fi.Size()
		return nil
	})
	if err != nil {
		return before, 0, fmt.Errorf("bolt: compact %s: %w", filepath.Base(path), err)
	}
	return before, after, nil
}

// stillAt reports whether db's file is the one at path now. Compact replaces
// the file while holding the old one's lock, so a process that was waiting for
// that lock must open the path again rather than write to a file nobody sees.
func stillAt(file *os.File, path string) bool {
	if file == nil {
		return true
	}
	open, err := file.Stat()
	if err != nil {
		return true // let the first real I/O error speak
	}
	now, err := os.Stat(path)
	return err != nil || os.SameFile(open, now)
}
