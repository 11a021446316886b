package configuration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
	"github.com/outrigger/outrigger/proxy/appchannel"
	"github.com/outrigger/outrigger/proxy/errs"
)

// Stores is what the block needs from the plugin host: the configuration
// stores configured for this sidecar, by component name.
type Stores interface {
	Lookup(name string) (Store, bool)
	Names() []string
}

// Store is one provisioned configuration store component.
type Store struct {
	Name string
	// Conn reaches the plugin; it carries x-component-instance and fails fast
	// with codes.Unavailable while the plugin is down.
	Conn grpc.ClientConnInterface
}

// AppChannel delivers configuration updates to the app
// (*appchannel.HTTPChannel satisfies it).
type AppChannel interface {
	Invoke(ctx context.Context, req *appchannel.Request) (*appchannel.Response, error)
}

// Config configures the block.
type Config struct {
	Stores Stores
	// AppChannel is nil when the sidecar has no app to push to; HTTP
	// subscribe then answers ERR_APP_CHANNEL_NIL.
	AppChannel AppChannel
	Logger     *slog.Logger
}

// API serves the configuration API over HTTP (RegisterHTTP) and gRPC (the
// six configuration methods of runtimev1.DaprServer). Close ends every
// subscription.
type API struct {
	stores Stores
	app    AppChannel
	log    *slog.Logger

	ctx    context.Context // parent of HTTP subscriptions; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	subs map[string]*subscription
}

// subscription is one live subscription, HTTP or gRPC.
type subscription struct {
	id     string
	store  string
	cancel context.CancelFunc
}

// New returns the configuration building block.
func New(cfg Config) *API {
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &API{stores: cfg.Stores, app: cfg.AppChannel, log: l.With("block", "configuration"),
		ctx: ctx, cancel: cancel, subs: map[string]*subscription{}}
}

// Close ends every subscription and waits for HTTP push loops to stop.
func (a *API) Close() error {
	a.cancel()
	a.mu.Lock()
	for _, s := range a.subs {
		s.cancel()
	}
	a.mu.Unlock()
	a.wg.Wait()
	return nil
}

// resolve finds the named store: 500 ERR_CONFIGURATION_STORE_NOT_CONFIGURED
// when there are none, 400 ERR_CONFIGURATION_STORE_NOT_FOUND when unknown.
func (a *API) resolve(name string) (Store, error) {
	if a.stores == nil || len(a.stores.Names()) == 0 {
		return Store{}, errs.ConfigurationStoreNotConfigured.New()
	}
	s, ok := a.stores.Lookup(name)
	if !ok || s.Conn == nil {
		return Store{}, errs.ConfigurationStoreNotFound.New(name)
	}
	if s.Name == "" {
		s.Name = name
	}
	return s, nil
}

// pluginMessage is the message of a plugin error.
func pluginMessage(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

// get calls the plugin's Get.
func (a *API) get(ctx context.Context, s Store, keys []string, md map[string]string) (map[string]*ocomponentsv1.ConfigurationItem, error) {
	resp, err := ocomponentsv1.NewConfigurationStoreClient(s.Conn).Get(ctx, &ocomponentsv1.ConfigurationStoreGetRequest{Keys: keys, Metadata: md})
	if err != nil {
		return nil, errs.ConfigurationGet.New(keys, s.Name, pluginMessage(err))
	}
	return resp.GetItems(), nil
}

// pluginStream is an open plugin Subscribe stream.
type pluginStream = grpc.ServerStreamingClient[ocomponentsv1.ConfigurationStoreSubscribeResponse]

// open starts a plugin subscription and waits for its ready message. The
// stream lives as long as ctx.
func open(ctx context.Context, s Store, keys []string, md map[string]string) (pluginStream, error) {
	stream, err := ocomponentsv1.NewConfigurationStoreClient(s.Conn).Subscribe(ctx, &ocomponentsv1.ConfigurationStoreSubscribeRequest{Keys: keys, Metadata: md})
	if err != nil {
		return nil, err
	}
	if _, err := stream.Recv(); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("the store ended the subscription before it was live")
		}
		return nil, err
	}
	return stream, nil
}

// add registers a subscription under a new id.
func (a *API) add(store string, cancel context.CancelFunc) *subscription {
	s := &subscription{id: newID(), store: store, cancel: cancel}
	a.mu.Lock()
	a.subs[s.id] = s
	a.mu.Unlock()
	return s
}

func (a *API) remove(id string) {
	a.mu.Lock()
	delete(a.subs, id)
	a.mu.Unlock()
}

// errNoSubscription is the unsubscribe failure for an unknown id.
var errNoSubscription = errors.New("subscription does not exist")

// unsubscribe ends subscription id; store, when set, must match.
func (a *API) unsubscribe(id, store string) error {
	a.mu.Lock()
	s, ok := a.subs[id]
	if ok && (store == "" || s.store == store) {
		delete(a.subs, id)
	}
	a.mu.Unlock()
	if !ok || (store != "" && s.store != store) {
		return errNoSubscription
	}
	s.cancel()
	return nil
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
}

func sortedKeys(keys []string) []string {
	k := slices.Clone(keys)
	slices.Sort(k)
	return k
}
