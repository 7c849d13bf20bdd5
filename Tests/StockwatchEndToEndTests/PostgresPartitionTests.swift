import Foundation
import Testing

/// A network that drops every packet while a command waits for PostgreSQL's answer (a
/// partition, a host that died): the command ends with exit 69 and one line naming the
/// server within about 30 s (TCP keepalives, `PostgresDatabase.keepAlive`), where before
/// it waited for ever. The partition is real, not simulated in the client: in a network
/// namespace of its own (`unshare --net`, as root), a proxy on that namespace's loopback
/// forwards to the server's Unix socket (as the server's user, for peer authentication),
/// the binary connects to the proxy over TCP as the PG* variables' user, and
/// the loopback goes down while its statement waits for a lock another session holds.
@Suite(.serialized) struct PostgresPartitionTests {
    static let tools = ["/usr/bin/unshare", "/usr/bin/python3", "/usr/bin/psql"].allSatisfy(FileManager.default.isExecutableFile)
        && ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"].contains(where: FileManager.default.isExecutableFile)
    static let possible = PostgresCommandTests.available && getuid() == 0 && tools

    @Test(.enabled(if: possible, "needs PostgreSQL, root, unshare and ip"), .timeLimit(.minutes(3)))
    func aStatementWaitingOnADroppedNetworkEndsWith69() throws {
        let sandbox = try Sandbox(backend: "postgresql")
        let database = try #require(sandbox.postgres).name
        let socketDirectory = try NotifyFollowTests.psqlValue("SHOW unix_socket_directories").split(separator: ",")[0]
            .trimmingCharacters(in: .whitespaces)
        let port = try NotifyFollowTests.psqlValue("SHOW port")
        let user = PostgresCommandTests.server["PGUSER"] ?? NSUserName()

        // Another session holds the table `alert list` reads, until the test ends (the
        // database is dropped WITH (FORCE) then).
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        holder.arguments = ["-X", "-q", "-d", database, "-c", "BEGIN; LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT;"]
        holder.environment = PostgresCommandTests.server.merging(["PATH": "/usr/bin:/bin"]) { $1 }
        holder.standardOutput = FileHandle.nullDevice
        holder.standardError = FileHandle.nullDevice
        try holder.run()
        defer { holder.terminate() }

        let script = #"""
            set -u
            ip link set lo up
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
                server = await asyncio.start_server(handle, "127.0.0.1", 15432)
                print("ready", flush=True)
                async with server:
                    await server.serve_forever()
            asyncio.run(main())
            PY
            python3 "$WORK/proxy.py" "$SOCKET/.s.PGSQL.$PGPORT_REAL" > "$WORK/proxy.out" 2>&1 &
            proxy=$!
            for _ in $(seq 100); do grep -q ready "$WORK/proxy.out" && break; sleep 0.05; done
            STOCKWATCH_DB="postgres://$DBUSER@127.0.0.1:15432/$DATABASE" timeout -s KILL 100 "$BIN" alert list > "$WORK/out" 2> "$WORK/err" &
            pid=$!
            # Down once its statement waits for the lock (asked through the proxy).
            for _ in $(seq 200); do
                waiting=$(PGHOST=127.0.0.1 PGPORT=15432 psql -X -At -d "$DATABASE" \
                    -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")
                [ "$waiting" = 1 ] && break
                sleep 0.05
            done
            echo "$waiting" > "$WORK/waiting"
            ip link set lo down
            start=$(date +%s.%N)
            wait $pid
            echo $? > "$WORK/status"
            awk -v start="$start" -v end="$(date +%s.%N)" 'BEGIN { print end - start }' > "$WORK/seconds"
            # Nothing of ours outlives the script (KILL: the test process's children may
            # inherit SIGTERM blocked).
            { kill -KILL $proxy; wait $proxy; } 2> /dev/null
            """#
        let work = sandbox.folder
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = ["--net", "/bin/bash", "-c", script]
        process.environment = PostgresCommandTests.server.merging([
            "PATH": "/usr/sbin:/sbin:/usr/bin:/bin", "SOCKET": socketDirectory, "PGPORT_REAL": port, "DBUSER": user,
            "DATABASE": database, "WORK": work, "BIN": Sandbox.binary, "STOCKWATCH_CONFIG": sandbox.write("empty.toml", ""),
            "HOME": work,
        ]) { $1 }
        try process.run()
        process.waitUntilExit()
        let read = { (name: String) in (try? String(contentsOfFile: "\(work)/\(name)", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "" }

        try #require(read("waiting") == "1", "the statement never waited for the lock: \(read("err"))")
        #expect(read("status") == "69", "exit \(read("status")) after \(read("seconds")) s: \(read("err"))")
        let seconds = try #require(Double(read("seconds")))
        // 15 s of silence, then three probes 5 s apart, and slack for a loaded machine.
        #expect(seconds < 60, "took \(seconds) s")
        let stderr = read("err")
        #expect(stderr.split(separator: "\n").count == 1 && stderr.contains("lost the connection to PostgreSQL at 127.0.0.1:15432"), "\(stderr)")
        #expect(read("out").isEmpty)
    }
}
