package redisstore_test

import (
	"context"
	"fmt"
	"os"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/redisstore"
)

// ExampleNew opens a store on the server that REDIS_URL names. The
// client's lifetime is the caller's: the store never closes it.
func ExampleNew() {
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	client, err := redisstore.NewClient(url)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	store := redisstore.New(client, redisstore.Options{Prefix: "myapp:sess:"})

	_, err = store.Load(context.Background(), filesession.NewID())
	fmt.Println(store.TTL(), err != nil)
}
