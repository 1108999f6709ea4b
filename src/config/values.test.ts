import { describe, expect, it } from 'vitest';
import {
  formatBytesExact,
  formatDuration,
  formatListenAddress,
  maskUrlPassword,
  parseBytes,
  parseCidr,
  parseDuration,
  parseListenAddress,
} from './values.js';

describe('parseBytes', () => {
  it('reads integers as bytes and units as SI (KB) or binary (KiB)', () => {
    expect(parseBytes(0)).toBe(0);
    expect(parseBytes(1048576)).toBe(1048576);
    expect(parseBytes('1024')).toBe(1024);
    expect(parseBytes('512B')).toBe(512);
    expect(parseBytes('1KB')).toBe(1000);
    expect(parseBytes('1KiB')).toBe(1024);
    expect(parseBytes('20GiB')).toBe(20 * 2 ** 30);
    expect(parseBytes('20 gib')).toBe(20 * 2 ** 30);
    expect(parseBytes('1.5GB')).toBe(1_500_000_000);
    expect(parseBytes('2TiB')).toBe(2 * 2 ** 40);
    expect(parseBytes(' 3MB ')).toBe(3_000_000);
  });

  it('refuses negative, fractional, unit-less-but-odd and unknown-unit sizes, saying what is allowed', () => {
    expect(() => parseBytes(-1)).toThrow(/cannot be negative.*KiB/);
    expect(() => parseBytes('-5GiB')).toThrow(/cannot be negative/);
    expect(() => parseBytes(1.5)).toThrow(/not a whole number of bytes/);
    expect(() => parseBytes('20G')).toThrow(/"20G" is not a byte size; use .*GiB/);
    expect(() => parseBytes('20XB')).toThrow(/not a byte size/);
    expect(() => parseBytes('')).toThrow(/not a byte size/);
    expect(() => parseBytes('GiB')).toThrow(/not a byte size/);
    expect(() => parseBytes(Number.NaN)).toThrow(/not a whole number/);
    expect(() => parseBytes('99999999TiB')).toThrow(/too large/);
  });

  it('formats back to the largest exact unit', () => {
    expect(formatBytesExact(20 * 2 ** 30)).toBe('20GiB');
    expect(formatBytesExact(1000)).toBe('1KB');
    expect(formatBytesExact(1536)).toBe(1536);
    expect(formatBytesExact(1023)).toBe(1023);
    expect(formatBytesExact(0)).toBe(0);
    for (const n of [1, 1023, 1024, 5_000_000, 100 * 2 ** 20, 3 * 2 ** 40])
      expect(parseBytes(formatBytesExact(n))).toBe(n);
  });
});

describe('parseDuration', () => {
  it('reads numbers and bare numeric strings as seconds, and ms/s/m/h strings', () => {
    expect(parseDuration(30)).toBe(30_000);
    expect(parseDuration(0.5)).toBe(500);
    expect(parseDuration('30')).toBe(30_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('0')).toBe(0);
    expect(Object.is(parseDuration('-0'), 0)).toBe(true);
  });

  it('returns negative values as they are (a setting decides whether they mean forever)', () => {
    expect(parseDuration(-1)).toBe(-1000);
    expect(parseDuration('-1')).toBe(-1000);
    expect(parseDuration('-5m')).toBe(-300_000);
  });

  it('refuses unparsable durations, naming the allowed forms', () => {
    for (const bad of ['5x', '5 m', 'm', '', '1d', '5m-3s', 'forever']) {
      expect(() => parseDuration(bad)).toThrow(/is not a duration; use a number of seconds or a string like 500ms/);
    }
    expect(() => parseDuration(Number.POSITIVE_INFINITY)).toThrow(/not a duration/);
  });

  it('formats back to the largest exact unit', () => {
    expect(formatDuration(300_000)).toBe('5m');
    expect(formatDuration(5_400_000)).toBe('90m');
    expect(formatDuration(1500)).toBe('1500ms');
    expect(formatDuration(0)).toBe('0s');
    for (const ms of [1, 999, 1000, 90_000, 3_600_000]) expect(parseDuration(formatDuration(ms))).toBe(ms);
  });
});

describe('parseCidr', () => {
  it('parses IPv4 and IPv6 blocks, and bare addresses as single hosts', () => {
    expect(parseCidr('10.0.20.0/24')).toEqual({ address: '10.0.20.0', prefix: 24, family: 4, text: '10.0.20.0/24' });
    expect(parseCidr('10.0.20.2')).toMatchObject({ prefix: 32, text: '10.0.20.2/32' });
    expect(parseCidr('FD00:20::/64')).toMatchObject({ address: 'fd00:20::', prefix: 64, family: 6 });
    expect(parseCidr('::1')).toMatchObject({ prefix: 128, text: '::1/128' });
    expect(parseCidr('0.0.0.0/0').prefix).toBe(0);
    expect(parseCidr('fd00:0:0::0001/128').address).toBe('fd00::1');
  });

  it('refuses malformed blocks, saying which part is wrong', () => {
    expect(() => parseCidr('10.0.0.0/33')).toThrow(/prefix length must be 0-32 for an IPv4/);
    expect(() => parseCidr('fd00::/129')).toThrow(/0-128 for an IPv6/);
    expect(() => parseCidr('300.1.1.1/8')).toThrow(/"300.1.1.1" is not an IP address/);
    expect(() => parseCidr('10.0.0/24')).toThrow(/not an IP address/);
    expect(() => parseCidr('10.0.0.0/')).toThrow(/prefix length/);
    expect(() => parseCidr('10.0.0.0/-1')).toThrow(/prefix length/);
    expect(() => parseCidr('10.0.0.0/24/8')).toThrow(/prefix length/);
    expect(() => parseCidr('nas.lan/24')).toThrow(/not an IP address/);
  });
});

describe('parseListenAddress', () => {
  it('parses host:port with IPv4, bracketed IPv6 and localhost', () => {
    expect(parseListenAddress('10.0.20.5:11434')).toEqual({ host: '10.0.20.5', port: 11434, family: 4 });
    expect(parseListenAddress('[::1]:11434')).toEqual({ host: '::1', port: 11434, family: 6 });
    expect(parseListenAddress('[FD00:20::5]:80')).toEqual({ host: 'fd00:20::5', port: 80, family: 6 });
    expect(parseListenAddress('localhost:8080')).toEqual({ host: '127.0.0.1', port: 8080, family: 4 });
    expect(parseListenAddress('127.0.0.1:0').port).toBe(0);
  });

  it('fills a missing host or port only when defaults are given', () => {
    const defaults = { defaultHost: '127.0.0.1', defaultPort: 11434 };
    expect(parseListenAddress(':9000', defaults)).toEqual({ host: '127.0.0.1', port: 9000, family: 4 });
    expect(parseListenAddress('0.0.0.0', defaults)).toEqual({ host: '0.0.0.0', port: 11434, family: 4 });
    expect(parseListenAddress('::', defaults)).toEqual({ host: '::', port: 11434, family: 6 });
    expect(() => parseListenAddress('10.0.20.5')).toThrow(/has no port/);
    expect(() => parseListenAddress(':11434')).toThrow(/has no host/);
  });

  it('refuses ports out of range, host names and unbracketed IPv6 with a port', () => {
    expect(() => parseListenAddress('10.0.20.5:70000')).toThrow(/port "70000" is out of range; use 1-65535/);
    expect(() => parseListenAddress('10.0.20.5:http')).toThrow(/out of range/);
    expect(() => parseListenAddress('gpu1.lan:11434')).toThrow(/"gpu1.lan" is not an IP address/);
    expect(() => parseListenAddress('fd00::5:11434:1')).toThrow(/not an IP address|brackets/);
    expect(() => parseListenAddress('[10.0.0.1]:80')).toThrow(/not an IPv6 address/);
  });

  it('formats the canonical text', () => {
    expect(formatListenAddress({ host: '::1', port: 11434 })).toBe('[::1]:11434');
    expect(formatListenAddress(parseListenAddress('10.0.20.5:80'))).toBe('10.0.20.5:80');
  });
});

describe('maskUrlPassword', () => {
  it('masks the password of a URL and secret-named query parameters, nothing else', () => {
    expect(maskUrlPassword('postgres://hearth:s3cr3t@atlas.lan:5432/hearth')).toBe(
      'postgres://hearth:***@atlas.lan:5432/hearth',
    );
    expect(maskUrlPassword('postgresql://u:p@ss@h/db')).toBe('postgresql://u:***@h/db');
    expect(maskUrlPassword('postgres://hearth@atlas.lan/hearth')).toBe('postgres://hearth@atlas.lan/hearth');
    expect(maskUrlPassword('postgres://h/db?sslmode=require&password=x&api_token=y')).toBe(
      'postgres://h/db?sslmode=require&password=***&api_token=***',
    );
    expect(maskUrlPassword('embedded')).toBe('embedded');
  });
});
