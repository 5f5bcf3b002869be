// Package deps pins the chosen dependencies until the code that uses them lands. Temporary.
package deps

import (
	_ "github.com/HdrHistogram/hdrhistogram-go"
	_ "github.com/google/uuid"
	_ "github.com/gorilla/websocket"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/shirou/gopsutil/v4/process"
	_ "go.uber.org/goleak"
)
