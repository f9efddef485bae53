"""App keys: the typed slots through which handlers reach the node's services."""

from __future__ import annotations

from aiohttp import web

from ring import RingWatch
from shardgate.config import NodeConfig
from storage_node.byte_budget import ByteBudget
from storage_node.metrics import NodeMetrics
from storage_node.peers import PeerClient
from storage_node.replicator import Replicator
from storage_node.scrubber import Quarantine, Scrubber
from storage_node.store import Store
from storage_node.sweeper import Sweeper

CONFIG = web.AppKey("config", NodeConfig)
STORE = web.AppKey("store", Store)
METRICS = web.AppKey("metrics", NodeMetrics)
PEERS = web.AppKey("peers", PeerClient)
RINGS = web.AppKey("rings", RingWatch)  # only on a node with a ring file
SWEEPER = web.AppKey("sweeper", Sweeper)
REPLICATOR = web.AppKey("replicator", Replicator)
QUARANTINE = web.AppKey("quarantine", Quarantine)
SCRUBBER = web.AppKey("scrubber", Scrubber)
INLINE_READS = web.AppKey("inline_reads", ByteBudget)  # whole versions held for readers
