"""Several real CrowdDesk server processes on one PostgreSQL and one Redis: one conversation's
messages answered one at a time in order whichever process receives them, nothing lost or
doubled when a process is killed or Redis or the database goes away, web chat frames reaching a
widget whose socket another process holds, and races with exactly one winner."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from crowddesk.bot.conversations.outbox import Outbox
from crowddesk.bot.desk.agents import AgentDirectory
from crowddesk.bot.training.trainer import TrainResult
from crowddesk.connectors.types import OutboundMessage
from crowddesk.connectors.webchat import SOCKET_PATH
from crowddesk.storage.engines import create_engine_for
from tests.db_fixtures import PostgresSchema
from tests.demo_bot import API_AUTH, copy_demo_project
from tests.fakes.tcp_proxy import TcpProxy
from tests.redis_server import RedisServer
from tests.server_processes import CROWDDESK, STARTUP_SECONDS, ServerProcess, start_all
from tests.test_callback_channel import Receiver

pytestmark = pytest.mark.postgres

LOCK_LIFETIME_SECONDS = 2
REQUEST_SECONDS = 90.0  # longer than a message may wait for its conversation's lock (60 s)
RECOVERY_SECONDS = 60.0  # only a broken recovery waits this long
# An outbox row a killed process had claimed is hidden from the others for its lease (120 s).
OUTBOX_SECONDS = 180.0
REDIS_DOWN = {"error": "the lock store (Redis) is unavailable; try again shortly"}
DATABASE_DOWN = {"error": "the database is unavailable; try again shortly"}
HANDOFF = "I want to speak to a human"


@dataclass
class Cluster:
    """Two server processes on one schema and one Redis; `b` reaches PostgreSQL through `proxy`."""

    a: ServerProcess
    b: ServerProcess
    proxy: TcpProxy
    redis: RedisServer
    receiver: Receiver
    database: Engine
    project: Path
    env: dict[str, str]  # what every process is given besides its database URL
    agents: AgentDirectory = field(init=False)

    def __post_init__(self) -> None:
        self.agents = AgentDirectory(self.database)

    def both_running(self) -> None:
        """Restart a process an earlier test killed."""
        dead = [server for server in (self.a, self.b) if not server.running]
        start_all(dead)

    def agent(self) -> tuple[str, dict[str, str]]:
        """A new agent's id and desk API header."""
        agent_id = f"agent-{uuid.uuid4().hex[:8]}"
        self.agents.add(agent_id, "Ana Agent")
        return agent_id, {"Authorization": f"Bearer {self.agents.issue_token(agent_id)}"}


def scale_out_project(folder: Path, receiver_url: str) -> Path:
    """The demo project with a Redis lock store whose locks outlive a dead process by 2 s, and the
    REST, web chat and callback channels (replies to the callback channel go through the outbox)."""
    project = copy_demo_project(folder)
    (project / "endpoints.yml").write_text(
        f'version: "3.1"\nlock_store:\n  type: redis\n  lock_lifetime: {LOCK_LIFETIME_SECONDS}\n', encoding="utf-8"
    )
    (project / "credentials.yml").write_text(f'rest:\nwebchat:\ncallback:\n  url: "{receiver_url}"\n', encoding="utf-8")
    return project


@pytest.fixture(scope="module")
def running_cluster(
    postgres_schema: PostgresSchema,
    module_redis_server: RedisServer,
    demo_training: TrainResult,
    action_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """The module's two server processes, started once; tests keep apart by their own senders."""
    receiver = Receiver()
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    logs = tmp_path_factory.mktemp("scale-out-logs")
    project = scale_out_project(tmp_path_factory.mktemp("scale-out"), receiver.url)
    url = make_url(postgres_schema.url)
    env = {
        "CROWDDESK_REDIS_URL": module_redis_server.url,
        "CROWDDESK_ACTION_ENDPOINT": action_server_url,
        "CROWDDESK_API_TOKEN": API_AUTH["Authorization"].removeprefix("Bearer "),
    }
    arguments = ["--project", str(project), "--model", str(demo_training.model_dir)]
    database = create_engine_for(postgres_schema.url)
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        a = ServerProcess("a", arguments, {**env, "CROWDDESK_DATABASE_URL": postgres_schema.url}, logs)
        b = ServerProcess("b", arguments, {**env, "CROWDDESK_DATABASE_URL": proxied}, logs)
        cluster = Cluster(a, b, proxy, module_redis_server, receiver, database, project, env)
        try:
            start_all([a, b])
            yield cluster
        finally:
            a.stop()
            b.stop()
            database.dispose()
            receiver.server.shutdown()
            receiver.server.server_close()
            postgres_schema.reset()


@pytest.fixture
def cluster(request: pytest.FixtureRequest, running_cluster: Cluster) -> Iterator[Cluster]:
    """Both processes serving; their logs of this test are printed if it fails."""
    running_cluster.both_running()
    servers = (running_cluster.a, running_cluster.b)
    offsets = {server.name: len(server.log()) for server in servers}
    failures = request.session.testsfailed
    yield running_cluster
    if request.session.testsfailed > failures:
        for server in servers:
            print(f"----- server {server.name} -----\n{server.log()[offsets[server.name] :]}")


def new_sender(kind: str = "customer") -> str:
    return f"{kind}-{uuid.uuid4().hex[:12]}"


def say(server: ServerProcess, sender: str, message: str, message_id: str, channel: str = "rest") -> httpx.Response:
    return httpx.post(
        f"{server.url}/webhooks/{channel}/webhook",
        json={"sender": sender, "message": message, "message_id": message_id},
        timeout=REQUEST_SECONDS,
    )


def events(server: ServerProcess, sender: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/conversations/{sender}/tracker", headers=API_AUTH, timeout=REQUEST_SECONDS)
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def message_ids(server: ServerProcess, sender: str) -> list[str]:
    """The client's message_id of each stored customer message, in the conversation's order."""
    return [str(e["message_id"]).partition(":")[2] for e in events(server, sender) if e["event"] == "user"]


def send_until_answered(server: ServerProcess, sender: str, message: str, message_id: str, channel: str) -> int:
    """Send until the answer is no longer 'come back later' (409 while another delivery of the
    message is in progress, 503 while a dependency is away); returns the final status."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    while True:
        status = say(server, sender, message, message_id, channel).status_code
        if status not in (409, 503) or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


def wait_until(condition: Callable[[], bool], what: str, seconds: float = RECOVERY_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {seconds:.0f} s")
        time.sleep(0.25)


def healthy(server: ServerProcess) -> bool:
    try:
        return httpx.get(f"{server.url}/health", timeout=10).status_code == 200
    except httpx.TransportError:
        return False


def test_one_conversations_messages_to_two_processes_run_one_at_a_time(cluster: Cluster) -> None:
    sender = new_sender()
    texts = ["hello", "thanks", "hi there", "thank you"]

    def send(i: int) -> httpx.Response:
        server = cluster.a if i % 2 == 0 else cluster.b
        return say(server, sender, texts[i % len(texts)], f"m{i}")

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(send, range(20)))

    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses if r.status_code != 200]
    stored = events(cluster.b, sender)
    turns: dict[str, list[str]] = {}
    current: list[str] = []
    for event in stored:
        if event["event"] == "user":
            current = turns.setdefault(str(event["message_id"]).partition(":")[2], [])
            assert not current, f"message {event['message_id']} is in the conversation twice"
        elif event["event"] == "bot":
            current.append(event["text"])
    assert sorted(turns) == sorted(f"m{i}" for i in range(20))
    # Each message's replies follow it, before the next message: the turns did not interleave,
    # and each was answered with exactly its own replies.
    for i, response in enumerate(responses):
        replies = [reply["text"] for reply in response.json()]
        assert replies, f"message m{i} got no reply"
        assert turns[f"m{i}"] == replies


@dataclass
class Attempt:
    """A message a test sent, and the status it was answered with."""

    sender: str
    channel: str
    text: str
    message_id: str
    server: str
    status: int | None = None  # None: no HTTP answer (the process died)


def test_a_killed_process_loses_no_answered_message_and_its_conversations_carry_on(cluster: Cluster) -> None:
    script = ["hello", "my card hasn't arrived", HANDOFF, "are you there?", "thanks"]
    conversations = [(new_sender("rest"), "rest") for _ in range(10)]
    conversations += [(new_sender("callback"), "callback") for _ in range(6)]
    attempts: list[Attempt] = []
    in_flight_to_a: set[str] = set()
    lock = threading.Lock()
    answered = threading.Semaphore(0)

    def converse(sender: str, channel: str, offset: int) -> None:
        for i, message in enumerate(script):
            server = (cluster.a, cluster.b)[(i + offset) % 2]
            attempt = Attempt(sender, channel, message, f"m{i}", server.name)
            with lock:
                attempts.append(attempt)
                if server is cluster.a:
                    in_flight_to_a.add(sender)
            try:
                attempt.status = say(server, sender, message, attempt.message_id, channel).status_code
            except httpx.TransportError:
                pass
            finally:
                with lock:
                    in_flight_to_a.discard(sender)
            answered.release()

    with ThreadPoolExecutor(max_workers=len(conversations)) as pool:
        for offset, (sender, channel) in enumerate(conversations):
            pool.submit(converse, sender, channel, offset)
        for _ in range(len(conversations)):  # about a fifth of the burst answered
            answered.acquire()
        with cluster.redis.client() as redis:
            # Killed while it holds a turn lock: wait until a conversation in flight to it has
            # its ticket in Redis (the request may still be in HTTP, or its turn just ended).
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with lock:
                    serving = set(in_flight_to_a)
                if any(redis.zcard(f"crowddesk:turn:{sender}:queue") for sender in serving):
                    break
                time.sleep(0.002)
            cluster.a.kill()
            # A conversation whose turn lock the dead process held: the survivor takes it over
            # once the lock's lease runs out.
            orphans = [sender for sender in serving if redis.zcard(f"crowddesk:turn:{sender}:queue")]
        assert orphans, "the kill came between turns"
        orphan = orphans[0]
        orphan_channel = dict(conversations)[orphan]
        started = time.monotonic()
        takeover = say(cluster.b, orphan, "hello again", "after-kill", orphan_channel)
        takeover_seconds = time.monotonic() - started
    print(f"killed holding {len(orphans)} conversations' locks; the survivor took one over in {takeover_seconds:.2f} s")
    assert takeover.status_code == 200, takeover.text

    accepted = [a for a in attempts if a.status is not None and 200 <= a.status < 300]
    refused = [a for a in attempts if a not in accepted]
    print(f"{len(accepted)} messages answered, {len(refused)} not: {Counter(str(a.status) for a in refused)}")
    assert refused, "the kill came too late to interrupt anything"
    for attempt in accepted:
        assert attempt.message_id in message_ids(cluster.b, attempt.sender), attempt

    still_refused = [
        (a, status)
        for a in refused
        if (status := send_until_answered(cluster.b, a.sender, a.text, a.message_id, a.channel)) != 200
    ]
    assert not still_refused, f"sent again to the surviving process, still refused: {still_refused}"
    for sender, _ in conversations:
        expected = [f"m{i}" for i in range(len(script))] + (["after-kill"] if sender == orphan else [])
        assert sorted(message_ids(cluster.b, sender)) == sorted(expected)

    assert tickets_without_owner(cluster.database) == []
    callback_senders = [sender for sender, channel in conversations if channel == "callback"]
    assert_outbox_delivered(cluster, callback_senders)


def tickets_without_owner(database: Engine) -> list[tuple[Any, ...]]:
    """Conversations whose owner does not match their open ticket: a ticket nobody answers, or a
    conversation the bot never answers again."""
    with database.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT c.sender_id, c.owner, count(h.id), min(h.status) FROM conversations c "
                "LEFT JOIN handoffs h ON h.conversation_id = c.id AND h.status IN ('queued', 'assigned') "
                "GROUP BY c.sender_id, c.owner"
            )
        ).all()
    return [tuple(row) for row in rows if not ((row[1] == "bot" and row[2] == 0) or (row[2] == 1 and row[1] == row[3]))]


def assert_outbox_delivered(cluster: Cluster, senders: list[str]) -> None:
    """Every reply the callback conversations stored has one outbox row, and reached the
    customer's system; one more time at most for a row the killed process was sending (delivery
    is at least once: its send may have arrived before it could record it)."""
    outbox = Outbox(cluster.database)
    wait_until(lambda: not outbox.records("pending"), "delivered from the outbox", OUTBOX_SECONDS)
    for sender in senders:
        stored = [e["text"] for e in events(cluster.b, sender) if e["event"] == "bot"]
        rows = [r for r in outbox.records() if r.message.recipient_id == sender]
        assert [r.message.text for r in rows] == stored, sender
        assert {r.status for r in rows} <= {"delivered"}, sender
        received = Counter(cluster.receiver.texts_for(sender))
        assert Counter(stored) - received == Counter(), f"lost on the way to {sender}"
        sent_again = Counter(r.message.text for r in rows if r.attempts > 1)
        assert received - Counter(stored) <= sent_again, f"delivered twice to {sender}"
        if received != Counter(stored):
            print(f"{sender}: sent again after the kill: {received - Counter(stored)}")


def test_a_redis_restart_refuses_messages_fast_and_service_resumes_by_itself(cluster: Cluster) -> None:
    sender = new_sender()
    assert say(cluster.a, sender, "hello", "before").status_code == 200

    cluster.redis.stop()
    try:
        for server in (cluster.a, cluster.b):
            started = time.monotonic()
            refused = say(server, sender, "hello", f"down-{server.name}")
            print(f"refused by {server.name} in {time.monotonic() - started:.2f} s")
            assert (refused.status_code, refused.json()) == (503, REDIS_DOWN)
            assert refused.headers["retry-after"]
            health = httpx.get(f"{server.url}/health", timeout=REQUEST_SECONDS)
            assert (health.status_code, health.json()) == (503, REDIS_DOWN)
    finally:
        cluster.redis.start()  # a new server: every lock and subscription forgotten

    wait_until(lambda: healthy(cluster.a) and healthy(cluster.b), "healthy again")
    assert message_ids(cluster.a, sender) == ["before"]  # the refused messages left nothing
    for server in (cluster.a, cluster.b):
        assert say(server, sender, "hello", f"down-{server.name}").status_code == 200
    assert message_ids(cluster.b, sender) == ["before", "down-a", "down-b"]


def test_traffic_through_a_redis_restart_stores_each_message_once(cluster: Cluster) -> None:
    senders = [new_sender() for _ in range(4)]
    attempts: list[Attempt] = []
    stop = threading.Event()

    def converse(sender: str, offset: int) -> None:
        i = 0
        while not stop.is_set():
            server = (cluster.a, cluster.b)[(i + offset) % 2]
            attempt = Attempt(sender, "rest", "hello", f"m{i}", server.name)
            attempt.status = say(server, sender, attempt.text, attempt.message_id).status_code
            attempts.append(attempt)
            i += 1

    with ThreadPoolExecutor(max_workers=len(senders)) as pool:
        for offset, sender in enumerate(senders):
            pool.submit(converse, sender, offset)
        time.sleep(2)
        cluster.redis.stop()
        time.sleep(3)
        cluster.redis.start()
        time.sleep(3)
        stop.set()

    statuses = Counter(a.status for a in attempts)
    print(f"through the restart: {statuses}")
    assert set(statuses) <= {200, 503} and statuses[503], statuses
    refused = [a for a in attempts if a.status == 503]
    for sender in senders:
        stored = message_ids(cluster.a, sender)
        assert sorted(stored) == sorted(a.message_id for a in attempts if a.sender == sender and a.status == 200)
    for attempt in refused:
        status = send_until_answered(cluster.b, attempt.sender, attempt.text, attempt.message_id, "rest")
        assert status == 200
    for sender in senders:
        stored = message_ids(cluster.b, sender)
        assert sorted(stored) == sorted(a.message_id for a in attempts if a.sender == sender)


def test_a_process_cut_off_from_postgresql_refuses_then_recovers(cluster: Cluster) -> None:
    sender = new_sender()
    assert say(cluster.b, sender, "hello", "before").status_code == 200

    cluster.proxy.cut()
    try:
        refused = say(cluster.b, sender, "hello", "cut")
        assert (refused.status_code, refused.json()) == (503, DATABASE_DOWN)
        health = httpx.get(f"{cluster.b.url}/health", timeout=REQUEST_SECONDS)
        assert (health.status_code, health.json()) == (503, DATABASE_DOWN)
        assert healthy(cluster.a)  # the other process still reaches the database
        assert message_ids(cluster.a, sender) == ["before"]
    finally:
        cluster.proxy.restore()

    wait_until(lambda: healthy(cluster.b), "healthy again")
    assert send_until_answered(cluster.b, sender, "hello", "cut", "rest") == 200
    assert message_ids(cluster.a, sender) == ["before", "cut"]


def test_an_agent_reply_sent_through_one_process_reaches_a_widget_on_the_other(cluster: Cluster) -> None:
    session = str(uuid.uuid4())
    sender = f"webchat:{session}"
    _, desk = cluster.agent()

    def desk_post(path: str, **body: Any) -> None:
        response = httpx.post(f"{cluster.b.url}/desk/api{path}", headers=desk, timeout=REQUEST_SECONDS, **body)
        assert response.status_code == 200, response.text

    async def scenario() -> dict[str, Any]:
        socket_url = f"ws://127.0.0.1:{cluster.a.port}{SOCKET_PATH}?session={session}"
        async with websockets.connect(socket_url) as socket:
            assert json.loads(await socket.recv())["type"] == "history"
            message = {"type": "message", "message_id": str(uuid.uuid4()), "text": f"{HANDOFF} about my card"}
            await socket.send(json.dumps(message))
            while (frame := json.loads(await socket.recv()))["type"] not in ("ack", "error"):
                pass
            assert frame["type"] == "ack", frame
            tracker = await asyncio.to_thread(
                httpx.get, f"{cluster.b.url}/conversations/{sender}/tracker", headers=API_AUTH, timeout=REQUEST_SECONDS
            )
            ticket = tracker.json()["handoff"]["id"]
            await asyncio.to_thread(desk_post, f"/tickets/{ticket}/claim")
            await asyncio.to_thread(desk_post, f"/tickets/{ticket}/reply", json={"text": "Ana here, on process B."})
            while (frame := json.loads(await socket.recv())).get("role") != "agent":
                pass
            return dict(frame)

    async def within_a_minute() -> dict[str, Any]:
        async with asyncio.timeout(RECOVERY_SECONDS):
            return await scenario()

    pushed = asyncio.run(within_a_minute())
    assert (pushed["name"], pushed["text"]) == ("Ana Agent", "Ana here, on process B.")


def claim_at_once(cluster: Cluster, ticket_id: str) -> dict[str, int]:
    """Two new agents claim the ticket at the same moment, one through each process; the status
    each was answered, by agent id."""
    agents = [cluster.agent(), cluster.agent()]
    start = threading.Barrier(2)

    def claim(server: ServerProcess, desk: dict[str, str]) -> int:
        start.wait()
        url = f"{server.url}/desk/api/tickets/{ticket_id}/claim"
        return httpx.post(url, headers=desk, timeout=REQUEST_SECONDS).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = pool.map(claim, (cluster.a, cluster.b), [desk for _, desk in agents])
        return {agent_id: status for (agent_id, _), status in zip(agents, statuses, strict=True)}


def test_a_ticket_claimed_through_both_processes_at_once_has_one_owner(cluster: Cluster) -> None:
    for _ in range(5):
        sender = new_sender()
        assert say(cluster.a, sender, HANDOFF, "m1").status_code == 200
        ticket = httpx.get(f"{cluster.a.url}/conversations/{sender}/tracker", headers=API_AUTH).json()["handoff"]
        statuses = claim_at_once(cluster, ticket["id"])
        assert sorted(statuses.values()) == [200, 409]
        [winner] = [agent_id for agent_id, status in statuses.items() if status == 200]
        handoff = httpx.get(f"{cluster.b.url}/conversations/{sender}/tracker", headers=API_AUTH).json()["handoff"]
        assert (handoff["status"], handoff["assigned_to"]) == ("assigned", winner)


def test_outbox_rows_both_processes_race_for_are_delivered_once(cluster: Cluster) -> None:
    tag = uuid.uuid4().hex[:8]
    outbox = Outbox(cluster.database)
    texts = [f"race {tag} {i}" for i in range(200)]
    outbox.enqueue("callback", [OutboundMessage(f"race-{tag}-{i}", line) for i, line in enumerate(texts)])
    # A message to each process commits outbox rows there, which wakes both workers at once.
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda server: say(server, new_sender(), "hello", "m1", "callback"), (cluster.a, cluster.b)))

    wait_until(lambda: not outbox.records("pending"), "delivered", OUTBOX_SECONDS)
    delivered = Counter(body["text"] for body in cluster.receiver.accepted if body["text"] in set(texts))
    assert delivered == Counter(texts)
    rows = [r for r in outbox.records() if r.message.text in set(texts)]
    assert [(r.status, r.attempts) for r in rows] == [("delivered", 1)] * len(texts)


def run_refused(arguments: list[str], env: dict[str, str]) -> str:
    """Run `crowddesk run` expecting a refusal; returns what it printed."""
    result = subprocess.run(
        [CROWDDESK, "run", *arguments], check=False, env=env, capture_output=True, text=True, timeout=REQUEST_SECONDS
    )
    assert result.returncode != 0, result.stdout
    return result.stdout + result.stderr


def test_workers_are_refused_on_sqlite_and_without_a_lock_store(
    demo_project: Path, postgres_schema: PostgresSchema, tmp_path: Path
) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CROWDDESK_")}
    project = ["--project", str(demo_project), "--workers", "2"]
    on_sqlite = run_refused([*project, "--database-url", f"sqlite:///{tmp_path / 'crowddesk.db'}"], env)
    assert "--workers 2 needs PostgreSQL" in on_sqlite
    without_redis = run_refused([*project, "--database-url", postgres_schema.url], env)
    assert "--workers 2 needs a lock store (Redis)" in without_redis and "CROWDDESK_REDIS_URL" in without_redis


def test_two_workers_on_one_port_answer_a_conversation_once_per_message(
    cluster: Cluster, demo_training: TrainResult, postgres_schema: PostgresSchema
) -> None:
    arguments = ["--project", str(cluster.project), "--model", str(demo_training.model_dir), "--workers", "2"]
    env = {**cluster.env, "CROWDDESK_DATABASE_URL": postgres_schema.url}
    server = ServerProcess("workers", arguments, env, cluster.a.log_path.parent)
    try:
        start_all([server])
        # /health answers as soon as one of them serves.
        wait_until(lambda: server.log().count("Application startup complete.") == 2, "both serving", STARTUP_SECONDS)
        health = httpx.get(f"{server.url}/health", timeout=REQUEST_SECONDS).json()
        assert (health["database"], health["lock_store"]) == ("ok", "ok")
        sender = new_sender()
        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = list(pool.map(lambda i: say(server, sender, "hello", f"m{i}").status_code, range(6)))
        assert statuses == [200] * 6
        assert sorted(message_ids(server, sender)) == [f"m{i}" for i in range(6)]
    except BaseException:
        print(f"----- server {server.name} -----\n{server.log()}")
        raise
    finally:
        server.stop()
