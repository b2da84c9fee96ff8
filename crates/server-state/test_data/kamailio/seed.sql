-- A small Kamailio database as the lab leaves it after some traffic; TS('...') is a UTC DATETIME,
-- written as Kamailio's driver stores it (Julian day REAL on SQLite, timestamp on PostgreSQL).
INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES
  ('alice', '127.0.0.1', 'alice-secret-pw', '', ''),
  ('bob', '127.0.0.1', 'bob-secret-pw', '', ''),
  ('carol', '127.0.0.1', 'carol-secret-pw', '', '');
-- alice: primary 1001, alternate 391001; bob also got 1001 (duplicate); ghost has a number but no subscriber row.
INSERT INTO dbaliases (alias_username, alias_domain, username, domain) VALUES
  ('1001', '127.0.0.1', 'alice', '127.0.0.1'),
  ('391001', '127.0.0.1', 'alice', '127.0.0.1'),
  ('1002', '127.0.0.1', 'bob', '127.0.0.1'),
  ('1003', '127.0.0.1', 'carol', '127.0.0.1'),
  ('1001', '127.0.0.1', 'bob', '127.0.0.1'),
  ('1099', '127.0.0.1', 'ghost', '127.0.0.1');
-- alice registers (401 then 200); bob has a wrong password (401 then 403); carol never tried.
INSERT INTO sip_trace (time_stamp, time_us, callid, traced_user, msg, method, status, fromip, toip, fromtag, totag, direction) VALUES
  (TS('2026-11-26 04:06:00'), 100000, 'reg-a', 'alice', 'REGISTER sip:127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5098;branch=z9hG4bK1
From: <sip:alice@127.0.0.1>;tag=1
To: <sip:alice@127.0.0.1>
Call-ID: reg-a
CSeq: 1 REGISTER
Content-Length: 0

', 'REGISTER', '', 'udp:127.0.0.1:5098', 'udp:127.0.0.1:5060', '1', '', 'in'),
  (TS('2026-11-26 04:06:00'), 200000, 'reg-a', 'alice', 'SIP/2.0 401 Unauthorized
CSeq: 1 REGISTER

', 'REGISTER', '401', 'udp:127.0.0.1:5060', 'udp:127.0.0.1:5098', '1', 'x', 'out'),
  (TS('2026-11-26 04:06:00'), 300000, 'reg-a', 'alice', 'REGISTER sip:127.0.0.1 SIP/2.0
From: <sip:alice@127.0.0.1>;tag=1
To: <sip:alice@127.0.0.1>
Call-ID: reg-a
CSeq: 2 REGISTER
Authorization: Digest username="alice", realm="127.0.0.1", nonce="n", uri="sip:127.0.0.1", response="00112233445566778899aabbccddeeff"

', 'REGISTER', '', 'udp:127.0.0.1:5098', 'udp:127.0.0.1:5060', '1', '', 'in'),
  (TS('2026-11-26 04:06:00'), 400000, 'reg-a', 'alice', 'SIP/2.0 200 OK
CSeq: 2 REGISTER

', 'REGISTER', '200', 'udp:127.0.0.1:5060', 'udp:127.0.0.1:5098', '1', 'y', 'out'),
  (TS('2026-11-26 04:07:00'), 0, 'reg-b', 'bob', 'REGISTER sip:127.0.0.1 SIP/2.0
From: <sip:bob@127.0.0.1>;tag=2
To: <sip:bob@127.0.0.1>
CSeq: 1 REGISTER

', 'REGISTER', '', 'udp:127.0.0.1:5099', 'udp:127.0.0.1:5060', '2', '', 'in'),
  (TS('2026-11-26 04:07:00'), 1000, 'reg-b', 'bob', 'SIP/2.0 401 Unauthorized
CSeq: 1 REGISTER

', 'REGISTER', '401', 'udp:127.0.0.1:5060', 'udp:127.0.0.1:5099', '2', 'x', 'out'),
  (TS('2026-11-26 04:07:01'), 0, 'reg-b', 'bob', 'REGISTER sip:127.0.0.1 SIP/2.0
From: <sip:bob@127.0.0.1>;tag=2
To: <sip:bob@127.0.0.1>
CSeq: 2 REGISTER
Authorization: Digest username="bob", realm="127.0.0.1", response="ffeeddccbbaa99887766554433221100"

', 'REGISTER', '', 'udp:127.0.0.1:5099', 'udp:127.0.0.1:5060', '2', '', 'in'),
  (TS('2026-11-26 04:07:01'), 5000, 'reg-b', 'bob', 'SIP/2.0 403 Forbidden
CSeq: 2 REGISTER

', 'REGISTER', '403', 'udp:127.0.0.1:5060', 'udp:127.0.0.1:5099', '2', 'y', 'out');
-- Calls (acc: one row per INVITE final reply and per BYE; acc_cdrs: one per dialog).
INSERT INTO acc (method, from_tag, to_tag, callid, sip_code, sip_reason, time, src_user, src_domain, src_ip, dst_ouser, dst_user, dst_domain, route) VALUES
  ('INVITE', 'f1', 't1', 'call-echo', '200', 'OK', TS('2026-11-26 04:06:10'), 'alice', '127.0.0.1', '127.0.0.1', '600', '600', '127.0.0.1', 'echo'),
  ('BYE', 'f1', 't1', 'call-echo', '200', 'OK', TS('2026-11-26 04:06:12'), 'alice', '127.0.0.1', '127.0.0.1', '', NULL, '127.0.0.1', NULL),
  ('INVITE', 'f2', 't2', 'call-trunk', '200', 'OK', TS('2026-11-26 04:06:20'), 'alice', '127.0.0.1', '127.0.0.1', '95551234', '5551234', '127.0.0.1', 'trunk'),
  ('INVITE', 'f3', '', 'call-bob', '480', 'Temporarily Unavailable', TS('2026-11-26 04:06:30'), 'alice', '127.0.0.1', '127.0.0.1', '1002', 'bob', '127.0.0.1', NULL),
  ('INVITE', 'f4', '', 'call-gw-down', '503', 'No trunk available', TS('2026-11-26 04:06:40'), 'alice', '127.0.0.1', '127.0.0.1', '95035550000', '5035550000', '127.0.0.1', 'trunk'),
  ('INVITE', 'f5', 't5', 'call-in', '200', 'OK', TS('2026-11-26 04:06:50'), 'carol', '127.0.0.1', '127.0.0.1', '1001', 'alice', '127.0.0.1', 'local');
INSERT INTO acc_cdrs (start_time, end_time, duration, callid, caller, callee, dialed, route) VALUES
  (TS('2026-11-26 04:06:10'), TS('2026-11-26 04:06:12'), 2.007, 'call-echo', 'alice', 'echo', '600', 'echo'),
  (TS('2026-11-26 04:06:20'), TS('2026-11-26 04:06:21'), 1.012, 'call-trunk', 'alice', '5551234', '95551234', 'trunk'),
  (TS('2026-11-26 04:06:30'), TS('2026-11-26 04:06:30'), 0.0, 'call-bob', 'alice', 'bob', '1002', 'local'),
  (TS('2026-11-26 04:06:50'), TS('2026-11-26 04:06:52'), 1.5, 'call-in', 'carol', 'alice', '1001', 'local');
