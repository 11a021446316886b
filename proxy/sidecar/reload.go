package sidecar

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/outrigger/outrigger/proxy/resources"
)

// reloadDebounce gathers the events of one save (editors write, rename and
// chmod in quick succession) into one reload.
const reloadDebounce = 300 * time.Millisecond

// hotReloadEnabled reports --watch or the Configuration feature HotReload.
func hotReloadEnabled(o *Options, conf *resources.Configuration) bool {
	if o.Watch {
		return true
	}
	for _, f := range conf.Spec.Features {
		if strings.EqualFold(f.Name, "HotReload") && f.Enabled {
			return true
		}
	}
	return false
}

// watchResources reloads the resources folders when a YAML file in them
// changes, until ctx ends: Resiliency policies are swapped atomically,
// components added, replaced or removed, and changed Subscriptions restarted. A change that fails to load or
// validate is reported and the last good configuration stays in force.
func (s *sidecar) watchResources(ctx context.Context) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Error("hot reload off: cannot watch the resources folders", "err", err)
		return
	}
	defer w.Close()
	for _, dir := range s.o.ResourcesPaths {
		if err := w.Add(dir); err != nil {
			s.log.Error("hot reload: cannot watch folder", "dir", dir, "err", err)
		}
	}
	s.log.Info("hot reload on", "folders", s.o.ResourcesPaths)
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ext := strings.ToLower(filepath.Ext(ev.Name)); ext == ".yaml" || ext == ".yml" {
				timer = time.After(reloadDebounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			s.log.Warn("hot reload: watch error", "err", err)
		case <-timer:
			timer = nil
			s.reload(ctx)
		}
	}
}

// reload applies the resources folders as they are now.
func (s *sidecar) reload(ctx context.Context) {
	log := s.log.With("scope", "reload")
	set, err := resources.Load(ctx, s.o.ResourcesPaths, s.o.AppID, log)
	if err != nil {
		log.Error("reload rejected; the last good configuration stays in force", "err", err)
		return
	}
	if err := s.pols.reload(set.Resiliencies, s.o.AppID); err != nil {
		log.Error("reload rejected; the last good configuration stays in force", "err", err)
		return
	}
	if err := s.comps.reload(ctx, set.Components, s.o.gracePeriod()); err != nil {
		log.Error("reload: some components kept their previous version", "err", err)
	}
	if !sameSubscriptions(s.resNow.Load().Subscriptions, set.Subscriptions) {
		s.blocks.pubsub.Reload(ctx, set.Subscriptions)
	}
	s.resNow.Store(set)
	log.Info("reloaded", "components", len(set.Components), "resiliencies", len(set.Resiliencies))
}

func sameSubscriptions(a, b []resources.Subscription) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.File, x.Line, y.File, y.Line = "", 0, "", 0
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}
