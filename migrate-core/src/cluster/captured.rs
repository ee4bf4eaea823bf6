//! Replies captured from testkit clusters (`testkit::Cluster`, 3 masters + 1 replica
//! each), as the servers sent them, by `testkit/tests/capture_cluster_replies.rs`.

/// Redis 6.2.5, 3 masters + 3 replicas: `CLUSTER SLOTS`.
pub(super) const R62_SLOTS: &[u8] =
    b"*3\r\n*4\r\n:0\r\n:5460\r\n*3\r\n$9\r\n127.0.0.1\r\n:45727\r\n$40\r\n\
    f1b0b2c2bfe59b084c263cb213625ac026149b22\r\n*3\r\n$9\r\n127.0.0.1\r\n:46807\r\n$40\r\n\
    b65e1eb6843c426695889d37b769ad5b47d1a7ae\r\n*4\r\n:5461\r\n:10921\r\n*3\r\n$9\r\n\
    127.0.0.1\r\n:36819\r\n$40\r\nd90350432ba0602f94502c10ff38bf6ee1e79e07\r\n*3\r\n$9\r\n\
    127.0.0.1\r\n:38691\r\n$40\r\n4a7473b430de07d19269a528e32e392520b64089\r\n*4\r\n\
    :10922\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:44033\r\n$40\r\n\
    4d73048f0f113b7095ddeee56c76991ee343e967\r\n*3\r\n$9\r\n127.0.0.1\r\n:33115\r\n$40\r\n\
    7cc5797afd2f784cc1ef43c87c2f831eea1e14b5\r\n";

/// Redis 6.2.5: `CLUSTER NODES` on the first master while slots 0 and 1 migrate to the second.
pub(super) const R62_NODES_MIGRATING: &[u8] = b"$845\r\n\
    4d73048f0f113b7095ddeee56c76991ee343e967 127.0.0.1:44033@54033 master - 0 1796120707488 3 connected 10922-16383\n\
    b65e1eb6843c426695889d37b769ad5b47d1a7ae 127.0.0.1:46807@56807 slave f1b0b2c2bfe59b084c263cb213625ac026149b22 0 1796120708089 1 connected\n\
    d90350432ba0602f94502c10ff38bf6ee1e79e07 127.0.0.1:36819@46819 master - 0 1796120708089 2 connected 5461-10921\n\
    f1b0b2c2bfe59b084c263cb213625ac026149b22 127.0.0.1:45727@55727 myself,master - 0 1796120708000 1 connected 0-5460 [0->-d90350432ba0602f94502c10ff38bf6ee1e79e07] [1->-d90350432ba0602f94502c10ff38bf6ee1e79e07]\n\
    7cc5797afd2f784cc1ef43c87c2f831eea1e14b5 127.0.0.1:33115@43115 slave 4d73048f0f113b7095ddeee56c76991ee343e967 0 1796120708089 3 connected\n\
    4a7473b430de07d19269a528e32e392520b64089 127.0.0.1:38691@48691 slave d90350432ba0602f94502c10ff38bf6ee1e79e07 0 1796120707688 2 connected\n\
    \r\n";

/// Redis 6.2.5, after the move and with the third master killed and replaced by its replica: `CLUSTER NODES`.
pub(super) const R62_NODES_FAILED: &[u8] = b"$737\r\n\
    4d73048f0f113b7095ddeee56c76991ee343e967 127.0.0.1:44033@54033 master,fail - 1796120709494 1796120708491 3 disconnected\n\
    b65e1eb6843c426695889d37b769ad5b47d1a7ae 127.0.0.1:46807@56807 slave f1b0b2c2bfe59b084c263cb213625ac026149b22 0 1796120713524 1 connected\n\
    d90350432ba0602f94502c10ff38bf6ee1e79e07 127.0.0.1:36819@46819 master - 0 1796120713000 7 connected 0-1 5461-10921\n\
    f1b0b2c2bfe59b084c263cb213625ac026149b22 127.0.0.1:45727@55727 myself,master - 0 1796120713000 1 connected 2-5460\n\
    7cc5797afd2f784cc1ef43c87c2f831eea1e14b5 127.0.0.1:33115@43115 master - 0 1796120713524 8 connected 10922-16383\n\
    4a7473b430de07d19269a528e32e392520b64089 127.0.0.1:38691@48691 slave d90350432ba0602f94502c10ff38bf6ee1e79e07 0 1796120713000 7 connected\n\
    \r\n";

/// The same moment: `CLUSTER SLOTS`.
pub(super) const R62_SLOTS_FAILED: &[u8] =
    b"*4\r\n*4\r\n:0\r\n:1\r\n*3\r\n$9\r\n127.0.0.1\r\n:36819\r\n$40\r\n\
    d90350432ba0602f94502c10ff38bf6ee1e79e07\r\n*3\r\n$9\r\n127.0.0.1\r\n:38691\r\n$40\r\n\
    4a7473b430de07d19269a528e32e392520b64089\r\n*4\r\n:2\r\n:5460\r\n*3\r\n$9\r\n\
    127.0.0.1\r\n:45727\r\n$40\r\nf1b0b2c2bfe59b084c263cb213625ac026149b22\r\n*3\r\n$9\r\n\
    127.0.0.1\r\n:46807\r\n$40\r\nb65e1eb6843c426695889d37b769ad5b47d1a7ae\r\n*4\r\n\
    :5461\r\n:10921\r\n*3\r\n$9\r\n127.0.0.1\r\n:36819\r\n$40\r\n\
    d90350432ba0602f94502c10ff38bf6ee1e79e07\r\n*3\r\n$9\r\n127.0.0.1\r\n:38691\r\n$40\r\n\
    4a7473b430de07d19269a528e32e392520b64089\r\n*3\r\n:10922\r\n:16383\r\n*3\r\n$9\r\n\
    127.0.0.1\r\n:33115\r\n$40\r\n7cc5797afd2f784cc1ef43c87c2f831eea1e14b5\r\n";

/// Redis 6.2.5 does not know `CLUSTER SHARDS`.
pub(super) const R62_SHARDS: &[u8] =
    b"-ERR Unknown subcommand or wrong number of arguments for 'SHARDS'. Try CLUSTER HELP.\r\n";

/// Redis 7.0.15, 3 masters + 3 replicas: `CLUSTER SHARDS` (RESP2).
pub(super) const R70_SHARDS: &[u8] =
    b"*3\r\n*4\r\n$5\r\nslots\r\n*2\r\n:10922\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\n\
    id\r\n$40\r\nf69f6d65d8a208b4e16ff64484527d7f0b1fa55a\r\n$4\r\nport\r\n:38799\r\n$2\r\n\
    ip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\n\
    master\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n\
    $2\r\nid\r\n$40\r\n94d09ff572cec2e69ac1ef63fe1a4fff55f7fc7c\r\n$4\r\nport\r\n:39937\r\n\
    $2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\n\
    replica\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$7\r\nloading\r\n*4\r\n\
    $5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\nid\r\n$40\r\n\
    c3f8b84022a748599e720f9f4c82e7e50af855b3\r\n$4\r\nport\r\n:40067\r\n$2\r\nip\r\n$9\r\n\
    127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n\
    replication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n\
    8b6045eae6519dce14e7447f0954c5647849d4f8\r\n$4\r\nport\r\n:41701\r\n$2\r\nip\r\n$9\r\n\
    127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\n\
    replication-offset\r\n:0\r\n$6\r\nhealth\r\n$7\r\nloading\r\n*4\r\n$5\r\nslots\r\n*2\r\n\
    :5461\r\n:10921\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\nid\r\n$40\r\n\
    999ecdd19f1faaf1de59bdaec67860130abfc88c\r\n$4\r\nport\r\n:44809\r\n$2\r\nip\r\n$9\r\n\
    127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n\
    replication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n\
    4108fd6b0b0a4df84784138cdf63fbf045f0b74e\r\n$4\r\nport\r\n:43241\r\n$2\r\nip\r\n$9\r\n\
    127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\n\
    replication-offset\r\n:0\r\n$6\r\nhealth\r\n$7\r\nloading\r\n";

/// The same moment: `CLUSTER SLOTS` (7.0 leaves out replicas that report no offset yet).
pub(super) const R70_SLOTS: &[u8] =
    b"*3\r\n*3\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:40067\r\n$40\r\n\
    c3f8b84022a748599e720f9f4c82e7e50af855b3\r\n*0\r\n*3\r\n:5461\r\n:10921\r\n*4\r\n$9\r\n\
    127.0.0.1\r\n:44809\r\n$40\r\n999ecdd19f1faaf1de59bdaec67860130abfc88c\r\n*0\r\n*3\r\n\
    :10922\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:38799\r\n$40\r\n\
    f69f6d65d8a208b4e16ff64484527d7f0b1fa55a\r\n*0\r\n";

/// The same moment: `CLUSTER NODES`.
pub(super) const R70_NODES: &[u8] = b"$751\r\n\
    8b6045eae6519dce14e7447f0954c5647849d4f8 127.0.0.1:41701@51701 slave c3f8b84022a748599e720f9f4c82e7e50af855b3 0 1796120717000 1 connected\n\
    94d09ff572cec2e69ac1ef63fe1a4fff55f7fc7c 127.0.0.1:39937@49937 slave f69f6d65d8a208b4e16ff64484527d7f0b1fa55a 0 1796120717026 3 connected\n\
    f69f6d65d8a208b4e16ff64484527d7f0b1fa55a 127.0.0.1:38799@48799 master - 0 1796120716524 3 connected 10922-16383\n\
    c3f8b84022a748599e720f9f4c82e7e50af855b3 127.0.0.1:40067@50067 myself,master - 0 1796120716000 1 connected 0-5460\n\
    999ecdd19f1faaf1de59bdaec67860130abfc88c 127.0.0.1:44809@54809 master - 0 1796120716524 2 connected 5461-10921\n\
    4108fd6b0b0a4df84784138cdf63fbf045f0b74e 127.0.0.1:43241@53241 slave 999ecdd19f1faaf1de59bdaec67860130abfc88c 0 1796120717026 2 connected\n\
    \r\n";

/// Redis 7.0.15 after moving slots 0-1 and killing the third master: `CLUSTER SHARDS` (the dead master is a shard of its own, without slots).
pub(super) const R70_SHARDS_FAILED: &[u8] =
    b"*4\r\n*4\r\n$5\r\nslots\r\n*2\r\n:10922\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\n\
    id\r\n$40\r\n94d09ff572cec2e69ac1ef63fe1a4fff55f7fc7c\r\n$4\r\nport\r\n:39937\r\n$2\r\n\
    ip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\n\
    master\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*4\r\n\
    $5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\nid\r\n$40\r\n\
    f69f6d65d8a208b4e16ff64484527d7f0b1fa55a\r\n$4\r\nport\r\n:38799\r\n$2\r\nip\r\n$9\r\n\
    127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n\
    replication-offset\r\n:0\r\n$6\r\nhealth\r\n$4\r\nfail\r\n*4\r\n$5\r\nslots\r\n*2\r\n\
    :2\r\n:5460\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\nid\r\n$40\r\n\
    c3f8b84022a748599e720f9f4c82e7e50af855b3\r\n$4\r\nport\r\n:40067\r\n$2\r\nip\r\n$9\r\n\
    127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n\
    replication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n\
    8b6045eae6519dce14e7447f0954c5647849d4f8\r\n$4\r\nport\r\n:41701\r\n$2\r\nip\r\n$9\r\n\
    127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\n\
    replication-offset\r\n:0\r\n$6\r\nhealth\r\n$7\r\nloading\r\n*4\r\n$5\r\nslots\r\n*4\r\n\
    :0\r\n:1\r\n:5461\r\n:10921\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\nid\r\n$40\r\n\
    999ecdd19f1faaf1de59bdaec67860130abfc88c\r\n$4\r\nport\r\n:44809\r\n$2\r\nip\r\n$9\r\n\
    127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n\
    replication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n\
    4108fd6b0b0a4df84784138cdf63fbf045f0b74e\r\n$4\r\nport\r\n:43241\r\n$2\r\nip\r\n$9\r\n\
    127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\n\
    replication-offset\r\n:0\r\n$6\r\nhealth\r\n$7\r\nloading\r\n";

/// Valkey 9.1.2, same steps: `CLUSTER SHARDS` (shard ids; the dead master stays in its shard with `health fail`).
pub(super) const V91_SHARDS_FAILED: &[u8] =
    b"*3\r\n*6\r\n$5\r\nslots\r\n*2\r\n:10922\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\n\
    id\r\n$40\r\n84aa17b65b9ee321b1aa8a4fc8c954efbbe3fbaa\r\n$4\r\nport\r\n:41655\r\n$2\r\n\
    ip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\n\
    master\r\n$18\r\nreplication-offset\r\n:14\r\n$6\r\nhealth\r\n$4\r\nfail\r\n*14\r\n\
    $2\r\nid\r\n$40\r\ncde865b52760040eb40e301a479c2ae55324a7e1\r\n$4\r\nport\r\n:35179\r\n\
    $2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\n\
    master\r\n$18\r\nreplication-offset\r\n:299\r\n$6\r\nhealth\r\n$6\r\nonline\r\n$2\r\n\
    id\r\n$40\r\n5359576a428e355221810f7f35ed010a1f4e60cc\r\n*6\r\n$5\r\nslots\r\n*4\r\n\
    :0\r\n:1\r\n:5461\r\n:10921\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\nid\r\n$40\r\n\
    5b37bb2285ee623d7955131114081b8b085e61d2\r\n$4\r\nport\r\n:45609\r\n$2\r\nip\r\n$9\r\n\
    127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n\
    replication-offset\r\n:571\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n\
    5e86afbdf5c5d1f2f56f2ea09a053d5a85839232\r\n$4\r\nport\r\n:44439\r\n$2\r\nip\r\n$9\r\n\
    127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\n\
    replication-offset\r\n:571\r\n$6\r\nhealth\r\n$6\r\nonline\r\n$2\r\nid\r\n$40\r\n\
    a1460a16c35d412b8e03e04165a72004edae4d00\r\n*6\r\n$5\r\nslots\r\n*2\r\n:2\r\n:5460\r\n\
    $5\r\nnodes\r\n*2\r\n*14\r\n$2\r\nid\r\n$40\r\n\
    7b70b4c91c16df55ca7361996036d8a058231dea\r\n$4\r\nport\r\n:36159\r\n$2\r\nip\r\n$9\r\n\
    127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n\
    replication-offset\r\n:571\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n\
    854c896593f8e5a447a84b97acfa37bb84fde82e\r\n$4\r\nport\r\n:40413\r\n$2\r\nip\r\n$9\r\n\
    127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\n\
    replication-offset\r\n:571\r\n$6\r\nhealth\r\n$6\r\nonline\r\n$2\r\nid\r\n$40\r\n\
    b8f4fc30ca3459801a6834fb160280c05fa85696\r\n";

/// Valkey 9.1.2, 3 masters + 3 replicas: `CLUSTER SLOTS` (nodes with an empty metadata map).
pub(super) const V91_SLOTS: &[u8] =
    b"*3\r\n*4\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:36159\r\n$40\r\n\
    7b70b4c91c16df55ca7361996036d8a058231dea\r\n*0\r\n*4\r\n$9\r\n127.0.0.1\r\n:40413\r\n\
    $40\r\n854c896593f8e5a447a84b97acfa37bb84fde82e\r\n*0\r\n*4\r\n:5461\r\n:10921\r\n*4\r\n\
    $9\r\n127.0.0.1\r\n:45609\r\n$40\r\n5b37bb2285ee623d7955131114081b8b085e61d2\r\n*0\r\n\
    *4\r\n$9\r\n127.0.0.1\r\n:44439\r\n$40\r\n5e86afbdf5c5d1f2f56f2ea09a053d5a85839232\r\n\
    *0\r\n*4\r\n:10922\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:41655\r\n$40\r\n\
    84aa17b65b9ee321b1aa8a4fc8c954efbbe3fbaa\r\n*0\r\n*4\r\n$9\r\n127.0.0.1\r\n:35179\r\n\
    $40\r\ncde865b52760040eb40e301a479c2ae55324a7e1\r\n*0\r\n";

/// `INFO cluster` of a cluster node.
pub(super) const INFO_CLUSTER_ON: &[u8] = b"$30\r\n# Cluster\r\ncluster_enabled:1\r\n\r\n";

/// `INFO cluster` of a standalone Redis 7.0.15.
pub(super) const INFO_CLUSTER_OFF: &[u8] = b"$30\r\n# Cluster\r\ncluster_enabled:0\r\n\r\n";
