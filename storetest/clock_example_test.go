package storetest_test

import (
	"fmt"
	"time"

	"github.com/filesession/filesession/storetest"
)

func ExampleClock() {
	clock := storetest.NewClock(time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC))
	fmt.Println(clock.Now().Format(time.RFC3339))
	clock.Advance(30 * time.Minute)
	fmt.Println(clock.Now().Format(time.RFC3339))
	// Output:
	// 2026-01-02T15:04:05Z
	// 2026-01-02T15:34:05Z
}
