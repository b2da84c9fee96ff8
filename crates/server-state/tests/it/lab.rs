//! The Kamailio backend against the real lab (Kamailio + SIPp on loopback).
