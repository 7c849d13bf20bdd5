import Foundation
import Testing

/// A network that drops every packet while a command waits for PostgreSQL's answer (a
/// partition, a host that died): the command ends with exit 69 and one line naming the
/// server within about 30 s (TCP keepalives, `PostgresDatabase.keepAlive`), where before
/// it waited for ever. The partition is real, not simulated in the client: in a network
/// namespace of its own (`unshare --net`, as root), a proxy on that namespace's loopback
/// forwards to the server's Unix socket (as the server's user, for peer authentication),
/// the binary connects to the proxy over TCP as the PG* variables' user, and
/// the proxy's address goes away while its statement waits for a lock another session
/// holds. `serve`'s pool is cut the same way, while serve's own HTTP stays up.
@Suite(.serialized) struct PostgresPartitionTests {
    static let tools = ["/usr/bin/unshare", "/usr/bin/python3", "/usr/bin/psql", "/usr/bin/curl"].allSatisfy(FileManager.default.isExecutableFile)
        && ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"].contains(where: FileManager.default.isExecutableFile)
    static let possible = PostgresCommandTests.available && getuid() == 0 && tools

    /// Writes `$WORK/proxy.py`: `python3 proxy.py SOCKET ADDRESS` forwards ADDRESS:15432 to
    /// the server's Unix socket.
    static let proxy = #"""
        cat > "$WORK/proxy.py" <<'PY'
        import asyncio, os, sys
        # As the server's own user: Debian's clusters (pg_virtualenv's too) take Unix
        # socket connections by peer authentication.
        owner = os.stat(sys.argv[1])
        os.setgid(owner.st_gid)
        os.setuid(owner.st_uid)
        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except Exception:
                pass
            finally:
                writer.close()
        async def handle(reader, writer):
            upstream_reader, upstream_writer = await asyncio.open_unix_connection(sys.argv[1])
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        async def main():
            server = await asyncio.start_server(handle, sys.argv[2], 15432)
            print("ready", flush=True)
            async with server:
                await server.serve_forever()
        asyncio.run(main())
        PY
        """#

    @Test(.enabled(if: possible, "needs PostgreSQL, root, unshare, ip and curl"), .timeLimit(.minutes(3)))
    func aStatementWaitingOnADroppedNetworkEndsWith69() throws {
        let sandbox = try Sandbox(backend: "postgresql")
        let holder = try Self.hold("alerts", in: sandbox)
        defer { holder.terminate() }
        let read = try Self.runCut(in: sandbox, address: "127.0.0.1", script: #"""
            STOCKWATCH_DB="postgres://$DBUSER@127.0.0.1:15432/$DATABASE" timeout -s KILL 100 "$BIN" alert list > "$WORK/out" 2> "$WORK/err" &
            pid=$!
            waitForLock
            ip link set lo down
            start=$(date +%s.%N)
            wait $pid
            echo $? > "$WORK/status"
            awk -v start="$start" -v end="$(date +%s.%N)" 'BEGIN { print end - start }' > "$WORK/seconds"
            """#)

        try #require(read("waiting") == "1", "the statement never waited for the lock: \(read("err"))")
        #expect(read("status") == "69", "exit \(read("status")) after \(read("seconds")) s: \(read("err"))")
        let seconds = try #require(Double(read("seconds")))
        // 15 s of silence, then three probes 5 s apart, and slack for a loaded machine.
        #expect(seconds < 60, "took \(seconds) s")
        let stderr = read("err")
        #expect(stderr.split(separator: "\n").count == 1 && stderr.contains("lost the connection to PostgreSQL at 127.0.0.1:15432"), "\(stderr)")
        #expect(read("out").isEmpty)
    }

    /// serve's pool: a request whose query waits when the network to PostgreSQL drops
    /// every packet is answered 503 within about 30 s, and serve goes on answering
    /// (postgres-nio's `PostgresClient` took no socket options: about 15 minutes). The
    /// proxy listens on an address of its own on the loopback, which goes away; serve's
    /// HTTP stays on 127.0.0.1.
    @Test(.enabled(if: possible, "needs PostgreSQL, root, unshare, ip and curl"), .timeLimit(.minutes(3)))
    func aServeQueryWaitingOnADroppedNetworkIsAnswered503() throws {
        let sandbox = try Sandbox(backend: "postgresql")
        let holder = try Self.hold("devices", in: sandbox)
        defer { holder.terminate() }
        let read = try Self.runCut(in: sandbox, address: "10.77.0.1", script: #"""
            export STOCKWATCH_DB="postgres://$DBUSER@10.77.0.1:15432/$DATABASE"
            "$BIN" user add alice --json > "$WORK/user.json" 2> "$WORK/err"
            token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$WORK/user.json")
            timeout -s KILL 120 "$BIN" serve --listen 127.0.0.1:18080 > "$WORK/serve.out" 2> "$WORK/serve.err" &
            serve=$!
            for _ in $(seq 200); do grep -q listening "$WORK/serve.out" && break; sleep 0.05; done
            curl -s -m 100 -o "$WORK/out" -w '%{http_code}' -H "Authorization: Bearer $token" http://127.0.0.1:18080/v1/devices > "$WORK/status" &
            pid=$!
            waitForLock
            ip addr del 10.77.0.1/32 dev lo
            start=$(date +%s.%N)
            wait $pid
            awk -v start="$start" -v end="$(date +%s.%N)" 'BEGIN { print end - start }' > "$WORK/seconds"
            # Still serving: an answer that needs no database.
            curl -s -m 10 -o /dev/null -w '%{http_code}' http://127.0.0.1:18080/healthz > "$WORK/health"
            { kill -KILL $serve; wait $serve; } 2> /dev/null
            """#)

        try #require(read("waiting") == "1", "the query never waited for the lock: \(read("err")) \(read("serve.err"))")
        #expect(read("status") == "503", "HTTP \(read("status")) after \(read("seconds")) s: \(read("out")) \(read("serve.err"))")
        let seconds = try #require(Double(read("seconds")))
        #expect(seconds < 60, "took \(seconds) s")
        #expect(read("out").contains("lost the connection to PostgreSQL at 10.77.0.1:15432"), "\(read("out"))")
        #expect(!read("health").isEmpty && read("health") != "000", "healthz: \(read("health"))")
    }

    /// Another session holds `table` until the test ends (the database is dropped WITH
    /// (FORCE) then).
    static func hold(_ table: String, in sandbox: Sandbox) throws -> Process {
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        holder.arguments = [
            "-X", "-q", "-d", try #require(sandbox.postgres).name, "-c", "BEGIN; LOCK TABLE \(table) IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT;",
        ]
        holder.environment = PostgresCommandTests.server.merging(["PATH": "/usr/bin:/bin"]) { $1 }
        holder.standardOutput = FileHandle.nullDevice
        holder.standardError = FileHandle.nullDevice
        try holder.run()
        return holder
    }

    /// Runs `script` as root in network and PID namespaces of their own, after the proxy started on
    /// `address` (added to the loopback if it is not 127.0.0.1); `waitForLock` waits until
    /// a statement waits for a lock and writes the count to `waiting`. Returns a reader of
    /// the files the script wrote in the sandbox's folder.
    static func runCut(in sandbox: Sandbox, address: String, script: String) throws -> (String) -> String {
        let database = try #require(sandbox.postgres).name
        let socketDirectory = try NotifyFollowTests.psqlValue("SHOW unix_socket_directories").split(separator: ",")[0]
            .trimmingCharacters(in: .whitespaces)
        let port = try NotifyFollowTests.psqlValue("SHOW port")
        let user = PostgresCommandTests.server["PGUSER"] ?? NSUserName()
        let whole = #"""
            set -u
            ip link set lo up
            [ "$ADDRESS" = 127.0.0.1 ] || ip addr add "$ADDRESS/32" dev lo
            \#(proxy)
            python3 "$WORK/proxy.py" "$SOCKET/.s.PGSQL.$PGPORT_REAL" "$ADDRESS" > "$WORK/proxy.out" 2>&1 &
            proxy=$!
            for _ in $(seq 100); do grep -q ready "$WORK/proxy.out" && break; sleep 0.05; done
            # Until a statement waits for the lock (asked through the proxy).
            waitForLock() {
                for _ in $(seq 200); do
                    waiting=$(PGHOST="$ADDRESS" PGPORT=15432 psql -X -At -d "$DATABASE" \
                        -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")
                    [ "$waiting" = 1 ] && break
                    sleep 0.05
                done
                echo "$waiting" > "$WORK/waiting"
            }
            \#(script)
            # Nothing of ours outlives the script (KILL: the test process's children may
            # inherit SIGTERM blocked).
            { kill -KILL $proxy; wait $proxy; } 2> /dev/null
            """#
        let work = sandbox.folder
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        // A PID namespace too: when the script ends, the kernel kills whatever it left
        // running (serve under `timeout`, which a KILL of its own does not pass on).
        process.arguments = ["--net", "--pid", "--fork", "/bin/bash", "-c", whole]
        process.environment = PostgresCommandTests.server.merging([
            "PATH": "/usr/sbin:/sbin:/usr/bin:/bin", "SOCKET": socketDirectory, "PGPORT_REAL": port, "DBUSER": user,
            "DATABASE": database, "WORK": work, "BIN": Sandbox.binary, "STOCKWATCH_CONFIG": sandbox.write("empty.toml", ""),
            "HOME": work, "ADDRESS": address,
        ]) { $1 }
        try process.run()
        process.waitUntilExit()
        return { name in (try? String(contentsOfFile: "\(work)/\(name)", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "" }
    }
}
