"""A game client process for test_sdk_crash.py: it tracks, then waits to be killed (kill -9).

Usage: python sdk_crash_child.py WS_URL TOKEN STATE_DIR CLIENT_GUID PLAYER MODE
  end-offline  session_start and combat (acked), then the connection goes and session_end is
               tracked: unacked when the process is killed
  start-open   a new session_start (acked): the session is open when the process is killed
  finish       send whatever an earlier run left, then exit cleanly
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from gameplay_analytics.sdk import AnalyticsClient, WebSocketConnector


async def main(ws_url: str, token: str, state: str, guid: str, player: str, mode: str) -> None:
    client = AnalyticsClient(
        player_uuid=player, client_guid=guid, token=token, state_dir=Path(state)
    )
    connector = WebSocketConnector(client, ws_url)
    connector.start()
    if mode == "end-offline":
        client.track("session_start")
        for n in range(3):
            client.track("engage_enemy", enemy_id=f"orc_{n}", tier="boss")
        assert await connector.wait_idle(30)
        await connector.stop(flush_timeout_s=0)
        client.track("session_end", reason="logout")
    elif mode == "start-open":
        assert await connector.wait_idle(30)
        client.track("session_start")
        assert await connector.wait_idle(30)
    else:
        assert await connector.stop(flush_timeout_s=30)
    print(json.dumps({"recovered": client.stats.recovered, "crash": client.recovered_crash}))
    sys.stdout.flush()
    if mode != "finish":
        await asyncio.sleep(3600)  # until killed


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
