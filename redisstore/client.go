package redisstore

import (
	"time"

	"github.com/redis/go-redis/v9"
)

// NewClient returns a go-redis client for rawURL (redis://[user:password@]
// host:port[/db][?option=value], as redis.ParseURL reads it) set up the way
// the store wants: ContextTimeoutEnabled, so that the store's Timeout and
// the request's deadline reach the socket and a server that stops answering
// fails the request within Timeout instead of go-redis's ReadTimeout; and
// dial, read and write timeouts of 2s unless the URL sets them. Use
// redis.NewClusterClient or redis.NewFailoverClient directly for Cluster or
// Sentinel, with ContextTimeoutEnabled set. The caller closes the client.
func NewClient(rawURL string) (*redis.Client, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	opt.ContextTimeoutEnabled = true
	for _, d := range []*time.Duration{&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout} {
		if *d == 0 {
			*d = DefaultTimeout
		}
	}
	return redis.NewClient(opt), nil
}
