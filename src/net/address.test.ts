import { describe, expect, it } from 'vitest';
import { addressScope, cidrContains, isNonPublicBlock, parseCidrBlock, parseIpAddress } from './address.js';
import { ZoneMap, ZonePolicy } from './zones.js';

const ip = (text: string) => {
  const address = parseIpAddress(text);
  if (!address) throw new Error(`test address ${text} did not parse`);
  return address;
};
const inBlock = (cidr: string, address: string) => cidrContains(parseCidrBlock(cidr), ip(address));

describe('peer addresses', () => {
  it('reads IPv4 and IPv6, canonicalising IPv6', () => {
    expect(ip('10.0.20.7')).toMatchObject({ family: 4, text: '10.0.20.7' });
    expect(ip('FD00:0020:0000::0007')).toMatchObject({ family: 6, text: 'fd00:20::7' });
    expect(ip('::1').text).toBe('::1');
    expect(ip('1:0:0:2:0:0:0:3').text).toBe('1:0:0:2::3');
  });

  it('reads an IPv4-mapped IPv6 peer (what a dual-stack socket reports) as IPv4', () => {
    expect(ip('::ffff:10.0.30.7')).toMatchObject({ family: 4, text: '10.0.30.7' });
    expect(ip('::ffff:a00:1e07')).toMatchObject({ family: 4, text: '10.0.30.7' });
    expect(ip('0:0:0:0:0:ffff:127.0.0.1').text).toBe('127.0.0.1');
    // A v4-compatible or NAT64 address is not mapped: it stays IPv6.
    expect(ip('::10.0.30.7').family).toBe(6);
    expect(ip('64:ff9b::10.0.30.7').family).toBe(6);
  });

  it('drops an IPv6 zone id but refuses one on IPv4 or an empty one', () => {
    expect(ip('fe80::1%eth0').text).toBe('fe80::1');
    expect(parseIpAddress('10.0.0.1%eth0')).toBeUndefined();
    expect(parseIpAddress('fe80::1%')).toBeUndefined();
  });

  it('refuses malformed input rather than guessing (fail closed)', () => {
    for (const bad of [
      undefined,
      null,
      42,
      '',
      ' 10.0.0.1',
      '10.0.0.256',
      '10.0.0',
      '010.0.0.1',
      '10.0.0.1/24',
      '10.0.0.1:80',
      '[::1]',
      '::1::2',
      '1:2:3:4:5:6:7:8:9',
      'gpu1.home.arpa',
      'localhost',
      '::ffff:300.1.1.1',
      'x'.repeat(100),
    ]) {
      expect(parseIpAddress(bad), String(bad)).toBeUndefined();
    }
  });
});

describe('CIDR blocks', () => {
  it('matches by prefix, with host bits in the written block ignored', () => {
    expect(inBlock('10.0.20.0/24', '10.0.20.255')).toBe(true);
    expect(inBlock('10.0.20.0/24', '10.0.21.0')).toBe(false);
    expect(inBlock('10.0.20.99/24', '10.0.20.1')).toBe(true);
    expect(parseCidrBlock('10.0.20.99/24').text).toBe('10.0.20.0/24');
    expect(inBlock('172.16.0.0/12', '172.31.255.255')).toBe(true);
    expect(inBlock('172.16.0.0/12', '172.32.0.0')).toBe(false);
    expect(inBlock('fd00:20::/64', 'fd00:20::abcd')).toBe(true);
    expect(inBlock('fd00:20::/64', 'fd00:21::1')).toBe(false);
    expect(inBlock('fd00::/7', 'fc12::1')).toBe(true);
  });

  it('handles the edge prefixes /0, /32 and /128', () => {
    expect(inBlock('0.0.0.0/0', '203.0.113.9')).toBe(true);
    expect(inBlock('0.0.0.0/0', '::1')).toBe(false); // families never mix
    expect(inBlock('::/0', '2001:db8::1')).toBe(true);
    expect(inBlock('::/0', '10.0.0.1')).toBe(false);
    expect(inBlock('10.0.20.2/32', '10.0.20.2')).toBe(true);
    expect(inBlock('10.0.20.2/32', '10.0.20.3')).toBe(false);
    expect(inBlock('10.0.20.2', '10.0.20.2')).toBe(true); // a bare address is one host
    expect(inBlock('fd00::2/128', 'fd00::2')).toBe(true);
    expect(inBlock('fd00::2/128', 'fd00::3')).toBe(false);
  });

  it('matches mapped peers against IPv4 blocks, and mapped blocks against IPv4 peers', () => {
    expect(inBlock('10.0.30.0/24', '::ffff:10.0.30.7')).toBe(true);
    expect(parseCidrBlock('::ffff:10.0.30.0/120').text).toBe('10.0.30.0/24');
    expect(inBlock('::ffff:10.0.30.0/120', '10.0.30.7')).toBe(true);
    expect(() => parseCidrBlock('::ffff:0:0/64')).toThrow(/prefix of 96 or more/);
  });

  it('refuses malformed blocks with a message naming them', () => {
    expect(() => parseCidrBlock('10.0.0.0/33')).toThrow(/"10.0.0.0\/33": the prefix length must be 0-32/);
    expect(() => parseCidrBlock('fd00::/129')).toThrow(/0-128/);
    expect(() => parseCidrBlock('300.1.1.1/8')).toThrow(/not an IP address/);
    expect(() => parseCidrBlock('10.0.0.0/-1')).toThrow(/prefix length/);
    expect(() => parseCidrBlock('10.0.0.0/')).toThrow(/prefix length/);
    expect(() => parseCidrBlock('servers')).toThrow(/not an IP address/);
  });
});

describe('address scopes', () => {
  it('tells wildcard, loopback, private, unique-local, link-local, shared and public apart', () => {
    expect(addressScope(ip('0.0.0.0'))).toBe('unspecified');
    expect(addressScope(ip('::'))).toBe('unspecified');
    expect(addressScope(ip('127.0.0.1'))).toBe('loopback');
    expect(addressScope(ip('127.255.0.9'))).toBe('loopback');
    expect(addressScope(ip('::1'))).toBe('loopback');
    expect(addressScope(ip('::ffff:127.0.0.1'))).toBe('loopback');
    expect(addressScope(ip('10.0.20.5'))).toBe('private');
    expect(addressScope(ip('172.20.0.1'))).toBe('private');
    expect(addressScope(ip('192.168.1.10'))).toBe('private');
    expect(addressScope(ip('fd00:20::5'))).toBe('unique-local');
    expect(addressScope(ip('fe80::1'))).toBe('link-local');
    expect(addressScope(ip('169.254.1.1'))).toBe('link-local');
    expect(addressScope(ip('100.100.1.1'))).toBe('shared');
    expect(addressScope(ip('172.32.0.1'))).toBe('public');
    expect(addressScope(ip('8.8.8.8'))).toBe('public');
    expect(addressScope(ip('2001:db8::1'))).toBe('public');
    expect(addressScope(ip('::ffff:8.8.8.8'))).toBe('public');
  });

  it('knows whether a whole block is non-public', () => {
    expect(isNonPublicBlock(parseCidrBlock('10.0.0.0/8'))).toBe(true);
    expect(isNonPublicBlock(parseCidrBlock('fd00:20::/64'))).toBe(true);
    expect(isNonPublicBlock(parseCidrBlock('10.0.0.0/7'))).toBe(false);
    expect(isNonPublicBlock(parseCidrBlock('0.0.0.0/0'))).toBe(false);
    expect(isNonPublicBlock(parseCidrBlock('::/0'))).toBe(false);
  });
});

describe('zone admission', () => {
  const zones = new ZoneMap({
    loopback: ['127.0.0.0/8', '::1/128'],
    lan: ['10.0.0.0/8', 'fd00::/8'],
    servers: ['10.0.20.0/24', 'fd00:20::/64'],
    user: ['10.0.30.0/24', 'fd00:30::/64'],
    guest: ['10.0.40.0/24'],
  });
  const policy = new ZonePolicy({ zones, allowed: ['lan', 'loopback'], denied: ['user', 'guest'] });

  it('admits peers in an allowed zone, naming the zone', () => {
    expect(policy.admit('10.0.20.7')).toMatchObject({ admitted: true, zone: 'lan' });
    expect(policy.admit('::ffff:10.0.20.7')).toMatchObject({ admitted: true, zone: 'lan' });
    expect(policy.admit('fd00:20::7')).toMatchObject({ admitted: true, zone: 'lan' });
    expect(policy.admit('::1')).toMatchObject({ admitted: true, zone: 'loopback' });
  });

  it('refuses denied zones even inside an allowed one, and peers outside every zone', () => {
    expect(policy.admit('10.0.30.7')).toMatchObject({ admitted: false, reason: 'denied', zone: 'user' });
    expect(policy.admit('::ffff:10.0.40.7')).toMatchObject({ admitted: false, reason: 'denied', zone: 'guest' });
    expect(policy.admit('fd00:30::9')).toMatchObject({ admitted: false, reason: 'denied', zone: 'user' });
    expect(policy.admit('192.168.1.5')).toMatchObject({ admitted: false, reason: 'outside' });
    expect(policy.admit('2001:db8::1')).toMatchObject({ admitted: false, reason: 'outside' });
  });

  it('fails closed on a missing or malformed peer address', () => {
    expect(policy.admit(undefined)).toMatchObject({ admitted: false, reason: 'malformed' });
    expect(policy.admit('not-an-ip')).toMatchObject({ admitted: false, reason: 'malformed' });
  });

  it('refuses to build a policy naming an undefined zone', () => {
    expect(() => new ZonePolicy({ zones, allowed: ['mgmt'], denied: [] })).toThrow(/"mgmt" is not defined/);
  });
});
