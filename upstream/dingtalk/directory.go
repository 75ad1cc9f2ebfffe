package dingtalk

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// directory names a person's departments as Config.Groups says, reading them from
// the organisation's directory with the corp app and keeping each department for a
// while, so that a repeat login costs only the person's own lookups.
type directory struct {
	client *Client
	format string // GroupsName, GroupsID or GroupsPath
	ttl    time.Duration

	mu    sync.Mutex
	depts map[int64]cachedDepartment
}

type cachedDepartment struct {
	Department
	expires time.Time // by the client's clock
}

// maxDepartmentDepth stops a walk up a department tree that loops.
const maxDepartmentDepth = 64

func newDirectory(client *Client, format string, ttl time.Duration) *directory {
	if format == "" {
		format = GroupsName
	}
	if ttl == 0 {
		ttl = DefaultDirectoryCacheTTL
	}
	return &directory{client: client, format: format, ttl: ttl, depts: map[int64]cachedDepartment{}}
}

// groups names the departments with these ids, in order, without repeats. It is
// never nil: a person in no department has no groups, but the directory was read.
func (d *directory) groups(ctx context.Context, ids []int64) ([]string, error) {
	groups := make([]string, 0, len(ids))
	for _, id := range ids {
		var group string
		switch d.format {
		case GroupsID:
			group = strconv.FormatInt(id, 10)
		case GroupsPath:
			path, err := d.path(ctx, id)
			if err != nil {
				return nil, err
			}
			group = path
		default:
			dept, err := d.department(ctx, id)
			if err != nil {
				return nil, err
			}
			group = dept.Name
		}
		if group != "" && !slices.Contains(groups, group) {
			groups = append(groups, group)
		}
	}
	return groups, nil
}

// path is the department's name under its parents' up to the top, the organisation
// (the root department) left out: "研发部/后端组". The root itself is its own name.
func (d *directory) path(ctx context.Context, id int64) (string, error) {
	var names []string
	for next := id; next != RootDepartment && next != 0; {
		if len(names) == maxDepartmentDepth {
			return "", fmt.Errorf("department %d: more than %d levels above it (a loop?)", id, maxDepartmentDepth)
		}
		dept, err := d.department(ctx, next)
		if err != nil {
			return "", err
		}
		names = append(names, dept.Name)
		next = dept.ParentID
	}
	if len(names) == 0 {
		root, err := d.department(ctx, RootDepartment)
		return root.Name, err
	}
	slices.Reverse(names)
	return strings.Join(names, "/"), nil
}

// department returns the department from the cache, or reads and keeps it.
// Concurrent misses may read the same department twice; both answers are right.
func (d *directory) department(ctx context.Context, id int64) (Department, error) {
	d.mu.Lock()
	cached, ok := d.depts[id]
	d.mu.Unlock()
	if ok && d.client.now().Before(cached.expires) {
		return cached.Department, nil
	}
	dept, err := d.client.Department(ctx, id)
	if err != nil {
		return Department{}, fmt.Errorf("department %d: %w", id, err)
	}
	d.mu.Lock()
	d.depts[id] = cachedDepartment{Department: dept, expires: d.client.now().Add(d.ttl)}
	d.mu.Unlock()
	return dept, nil
}
