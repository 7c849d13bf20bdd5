#!/usr/bin/env python3
# Users with one device each and N pending notifications with one pending delivery each
# on channel "phone", written straight into a stockwatch SQLite database (the notify
# benchmarks measure notify, not evaluate). Usage: seed-deliveries.py DB USERS N
import sqlite3, sys, time

db, users, notifications = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = int(time.time() * 1000)
c = sqlite3.connect(db)
c.executemany("INSERT INTO users (id, name, token_hash, created_at) VALUES (?, ?, ?, ?)",
              [(u, f"user{u}", f"{u:064x}", now) for u in range(1, users + 1)])
c.executemany("INSERT INTO devices (user_id, fcm_token, created_at, updated_at) VALUES (?, ?, ?, ?)",
              [(u, f"device-token-{u}", now, now) for u in range(1, users + 1)])
c.executemany("INSERT INTO notifications (id, user_id, symbol, price, observed_at, message, created_at) VALUES (?, ?, 'AAPL', 201.35, ?, 'AAPL crossed above 200.00 at 201.35', ?)",
              [(n, (n - 1) % users + 1, now, now) for n in range(1, notifications + 1)])
c.executemany("INSERT INTO deliveries (notification_id, channel, status, attempts, next_attempt_at, created_at, updated_at) VALUES (?, 'phone', 'pending', 0, ?, ?, ?)",
              [(n, now, now, now) for n in range(1, notifications + 1)])
c.commit()
