package main
import (
 _ "github.com/redis/go-redis/v9"
 _ "github.com/jackc/pgx/v5"
 _ "github.com/gorilla/websocket"
 _ "github.com/shirou/gopsutil/v4/process"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/HdrHistogram/hdrhistogram-go"
 _ "github.com/google/uuid"
 _ "go.uber.org/goleak"
)
func main(){}
