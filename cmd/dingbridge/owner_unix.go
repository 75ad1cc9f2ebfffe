//go:build unix

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// giveToFolderOwner makes a database the CLI just created belong to the owner
// of its folder, when root created it in a folder that belongs to someone
// else: serve runs as that user and must be able to open it. (systemd's
// StateDirectory= would fix ownership at start anyway; a plain service user
// would not.)
func giveToFolderOwner(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	if err := os.Chown(path, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("give the new database to the owner of its folder: %w", err)
	}
	return nil
}
