//! Offline geolocation: the country of an address from an embedded table (no network at build or
//! run time; data licence in `shared/geo/NOTICE`), an optional city-level MMDB file for
//! coordinates, and lower bounds on the distance between two places.
//!
//! With country precision only, a place is its country's bounding box and distances are the
//! shortest distance between boxes: a lower bound, so that country-level data never inflates a
//! travel speed (a user crossing from Germany to Austria is 0 km apart, not 500).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The address table's columns, laid out by `build.rs` ready to binary-search (big-endian).
const V4_STARTS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/v4-starts.bin"));
const V4_CODES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/v4-codes.bin"));
const V6_STARTS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/v6-starts.bin"));
const V6_CODES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/v6-codes.bin"));
const BOXES_TSV: &str = include_str!("../geo/country-boxes.tsv");
/// The mean Earth radius.
pub const EARTH_RADIUS_KM: f64 = 6371.0;

/// An ISO 3166-1 alpha-2 country code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// Parses a two-letter code (any case).
    pub fn parse(code: &str) -> Option<Country> {
        match code.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    /// A country from its English name (`"United States"`) or its code.
    pub fn from_name(name: &str) -> Option<Country> {
        let lower = name.trim().to_lowercase();
        regions().names.get(&lower).copied().or_else(|| match lower.as_str() {
            "united states of america" | "usa" => Country::parse("US"),
            "russian federation" => Country::parse("RU"),
            "south korea" | "republic of korea" | "korea, republic of" => Country::parse("KR"),
            _ => Country::parse(name.trim()),
        })
    }

    /// The ISO 3166-1 alpha-2 code.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Country {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Country::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not a country code: {s:?}")))
    }
}

/// A coordinate with its uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Radius (km) within which the true location lies.
    pub radius_km: f64,
}

/// Where an address (or an Okta sign-in) is, as precisely as known.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Place {
    /// The country.
    pub country: Option<Country>,
    /// The city, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Coordinates, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<Point>,
}

#[derive(Debug, Clone, Copy)]
struct GeoBox {
    south: f64,
    north: f64,
    west: f64,
    east: f64,
}

/// A column of `N`-byte big-endian values in the binary.
#[derive(Clone, Copy)]
struct Column<const N: usize>(&'static [u8]);

impl<const N: usize> Column<N> {
    fn len(self) -> usize {
        self.0.len() / N
    }

    fn get(self, i: usize) -> [u8; N] {
        let mut v = [0; N];
        v.copy_from_slice(&self.0[i * N..(i + 1) * N]);
        v
    }

    #[cfg(test)]
    fn iter(self) -> impl Iterator<Item = [u8; N]> {
        (0..self.len()).map(move |i| self.get(i))
    }
}

/// The embedded address table: ranges by first address, each with a country or `--`.
struct CountryTable {
    v4_starts: Column<4>,
    v4_codes: Column<2>,
    v6_starts: Column<16>,
    v6_codes: Column<2>,
}

const TABLE: CountryTable = CountryTable {
    v4_starts: Column(V4_STARTS),
    v4_codes: Column(V4_CODES),
    v6_starts: Column(V6_STARTS),
    v6_codes: Column(V6_CODES),
};

fn table() -> &'static CountryTable {
    &TABLE
}

/// Country regions and names, parsed from a small text table apart from the address ranges, so
/// that reading a country name or measuring a distance never decodes the ranges.
struct Regions {
    /// Each country's region: one box, or several (a country across the antimeridian, or with
    /// far-off parts such as Alaska and Hawaii).
    boxes: HashMap<Country, Vec<GeoBox>>,
    /// Lower-case English names (as Okta's `geographicalContext.country` gives them) → code.
    names: HashMap<String, Country>,
}

/// The tallest box a region is split into (degrees of latitude).
const LATITUDE_BAND: f64 = 10.0;

fn regions() -> &'static Regions {
    static REGIONS: OnceLock<Regions> = OnceLock::new();
    REGIONS.get_or_init(parse_regions)
}

fn parse_regions() -> Regions {
    let mut boxes = HashMap::new();
    let mut names = HashMap::new();
    for line in BOXES_TSV.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let [cc, south, north, west, east, name] = f[..] else { continue };
        let Some(cc) = Country::parse(cc) else { continue };
        if !name.is_empty() {
            names.insert(name.to_lowercase(), cc);
        }
        let edges: Option<Vec<f64>> =
            [south, north, west, east].iter().map(|v| v.parse().ok()).collect();
        if let Some(&[south, north, west, east]) = edges.as_deref() {
            let regions: &mut Vec<GeoBox> = boxes.entry(cc).or_default();
            // Across the antimeridian: one box on each side.
            let spans =
                if west > east { vec![(west, 180.0), (-180.0, east)] } else { vec![(west, east)] };
            // Bands of at most 10° of latitude: the same region, and a tighter bound (the
            // bound discounts longitude by the box's highest latitude).
            let mut band_south = south;
            while band_south < north || band_south == south {
                let band_north = (band_south + LATITUDE_BAND).min(north);
                for &(west, east) in &spans {
                    regions.push(GeoBox { south: band_south, north: band_north, west, east });
                }
                if band_north >= north {
                    break;
                }
                band_south = band_north;
            }
        }
    }
    Regions { boxes, names }
}

/// The country of the range `ip` falls in: a binary search over the big-endian column (byte
/// order is numeric order).
fn range_lookup<const N: usize>(
    starts: Column<N>,
    codes: Column<2>,
    ip: [u8; N],
) -> Option<Country> {
    let (mut lo, mut hi) = (0, starts.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if starts.get(mid) <= ip {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let code = codes.get(lo.checked_sub(1)?);
    (code != *b"--").then_some(Country(code))
}

/// The country of an address from the embedded table; `None` for private, reserved and
/// unassigned addresses.
pub fn country_of(ip: IpAddr) -> Option<Country> {
    if !is_global(ip) {
        return None;
    }
    let t = table();
    match ip {
        IpAddr::V4(v4) => range_lookup(t.v4_starts, t.v4_codes, v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => country_of(IpAddr::V4(v4)),
            None => range_lookup(t.v6_starts, t.v6_codes, v6.octets()),
        },
    }
}

/// Whether an address can be located at all: private, shared (CGNAT), loopback, link-local,
/// documentation, multicast and unique-local addresses cannot (the source data maps some of them
/// to whichever network announced them).
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || o[0] == 0
                || o[0] >= 240
                || (o[0] == 100 && (o[1] & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_global(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

/// A city-level MMDB file, opened by the user or found beside the policy: MaxMind's City layout
/// (GeoLite2-City, DB-IP City Lite) or ip-location-db's flat one (`scripts/geo/fetch-city-db.sh`).
pub struct CityDb {
    readers: Vec<maxminddb::Reader<Vec<u8>>>,
}

#[derive(Deserialize)]
struct MmdbCity<'a> {
    #[serde(borrow, default)]
    city: Option<MmdbNames<'a>>,
    #[serde(borrow, default)]
    country: Option<MmdbCountry<'a>>,
    #[serde(default)]
    location: Option<MmdbLocation>,
}

/// ip-location-db's flat layout: an address known only to its country has an empty city and
/// the country's centre, which is no place to measure from.
#[derive(Deserialize)]
struct FlatCity<'a> {
    #[serde(borrow, default)]
    city: Option<&'a str>,
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
}

/// The accuracy assumed where a database gives none (ip-location-db's layout), in km.
const DEFAULT_ACCURACY_KM: f64 = 100.0;

#[derive(Deserialize)]
struct MmdbNames<'a> {
    #[serde(borrow, default)]
    names: HashMap<&'a str, &'a str>,
}

#[derive(Deserialize)]
struct MmdbCountry<'a> {
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct MmdbLocation {
    latitude: Option<f64>,
    longitude: Option<f64>,
    accuracy_radius: Option<u16>,
}

/// A city database that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the city database {path}: {reason}")]
pub struct CityDbError {
    path: String,
    reason: String,
}

impl CityDb {
    /// Opens a MaxMind-format city database (read into memory).
    pub fn open(path: &Path) -> Result<CityDb, CityDbError> {
        if path.is_dir() {
            return Self::open_dir(path)?.ok_or_else(|| CityDbError {
                path: path.display().to_string(),
                reason: "no .mmdb file in it".into(),
            });
        }
        maxminddb::Reader::open_readfile(path)
            .map(|reader| CityDb { readers: vec![reader] })
            .map_err(|e| CityDbError { path: path.display().to_string(), reason: e.to_string() })
    }

    /// Every `.mmdb` file of a folder (ip-location-db ships IPv4 and IPv6 apart), in name order;
    /// `None` when it has none (or does not exist).
    pub fn open_dir(dir: &Path) -> Result<Option<CityDb>, CityDbError> {
        let Ok(entries) = std::fs::read_dir(dir) else { return Ok(None) };
        let mut files: Vec<std::path::PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "mmdb"))
            .collect();
        files.sort();
        let mut readers = Vec::new();
        for f in &files {
            readers.extend(Self::open(f)?.readers);
        }
        Ok((!readers.is_empty()).then_some(CityDb { readers }))
    }

    fn lookup(&self, ip: IpAddr) -> Option<Place> {
        self.readers.iter().find_map(|r| Self::lookup_in(r, ip))
    }

    fn lookup_in(reader: &maxminddb::Reader<Vec<u8>>, ip: IpAddr) -> Option<Place> {
        let found = reader.lookup(ip).ok()?;
        let city: MmdbCity = match found.decode() {
            Ok(city) => city?,
            Err(_) => return Self::flat(found.decode().ok()??),
        };
        let point = city.location.as_ref().and_then(|l| {
            Some(Point {
                lat: l.latitude?,
                lon: l.longitude?,
                radius_km: l.accuracy_radius.map_or(DEFAULT_ACCURACY_KM, f64::from),
            })
        });
        Some(Place {
            country: city.country.and_then(|c| c.iso_code).and_then(Country::parse),
            city: city.city.and_then(|c| c.names.get("en").map(|n| (*n).to_owned())),
            point,
        })
    }
}

impl CityDb {
    fn flat(c: FlatCity) -> Option<Place> {
        let city = c.city.map(str::trim).filter(|c| !c.is_empty());
        let point = match (city, c.latitude, c.longitude) {
            (Some(_), Some(lat), Some(lon)) => {
                Some(Point { lat, lon, radius_km: DEFAULT_ACCURACY_KM })
            }
            _ => None,
        };
        Some(Place {
            country: c.country_code.and_then(Country::parse),
            city: city.map(str::to_owned),
            point,
        })
    }
}

/// The folder beside the policy file where `scripts/geo/fetch-city-db.sh` puts the city
/// database: the functions see it as `/opt/geo` (the policy layer), the CLI beside its policy.
pub const CITY_DB_DIR: &str = "geo";

impl Geo {
    /// The city database named by `configured`, else the one in [`CITY_DB_DIR`] beside the
    /// policy file, else the country table alone ([`Geo::city_level`] says which).
    /// ASN data (`asn-ipv4.csv`, `asn-ipv6.csv`) in the same folder is used, read on first use.
    pub fn for_policy(policy_file: &Path, configured: Option<&Path>) -> Result<Geo, CityDbError> {
        let beside = policy_file.parent().unwrap_or(Path::new(".")).join(CITY_DB_DIR);
        let geo = match configured {
            Some(path) => CityDb::open(path).map(Geo::with_city_db)?,
            None => CityDb::open_dir(&beside)?.map(Geo::with_city_db).unwrap_or_default(),
        };
        let asn_dir = match configured {
            Some(path) if path.is_dir() => path.to_owned(),
            Some(path) => path.parent().unwrap_or(Path::new(".")).to_owned(),
            None => beside,
        };
        Ok(if ASN_FILES.iter().any(|f| asn_dir.join(f).is_file()) {
            geo.with_asn_dir(&asn_dir)
        } else {
            geo
        })
    }

    /// Travel is measured between cities (a city database is loaded), not countries.
    pub fn city_level(&self) -> bool {
        self.city.is_some()
    }
}

/// Geolocation: the embedded country table, refined by a city database when one is given; and
/// who owns an address (its autonomous system) when ASN data is given.
#[derive(Default)]
pub struct Geo {
    city: Option<CityDb>,
    asn: Option<LazyAsn>,
}

impl fmt::Debug for Geo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Geo")
            .field("city_db", &self.city.is_some())
            .field("asn_data", &self.asn.is_some())
            .finish()
    }
}

/// ASN data read on first use (half a million ranges: only a check that compares networks pays
/// for it).
struct LazyAsn {
    dir: std::path::PathBuf,
    db: OnceLock<Option<AsnDb>>,
}

/// The autonomous system an address belongs to: the network's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asn {
    /// The AS number.
    pub number: u32,
    /// Its organisation.
    pub org: String,
}

/// Address ranges → autonomous systems, as ip-location-db's ASN package writes them
/// (`asn-ipv4.csv`, `asn-ipv6.csv`: `start,end,number,organisation`, inclusive ranges; RouteViews,
/// the RIRs and DB-IP, CC BY 4.0), fetched by `scripts/geo/fetch-asn-db.sh`.
#[derive(Debug, Default)]
pub struct AsnDb {
    v4: Vec<(u32, u32, u32)>,
    v6: Vec<(u128, u128, u32)>,
    orgs: HashMap<u32, String>,
}

/// The ASN files' names.
pub const ASN_FILES: [&str; 2] = ["asn-ipv4.csv", "asn-ipv6.csv"];

impl AsnDb {
    /// Reads the CSV text of one or both files; a line that is not a range is an error naming
    /// it (a truncated download must not pass for data).
    pub fn parse(texts: &[&str]) -> Result<AsnDb, String> {
        let mut db = AsnDb::default();
        for text in texts {
            for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let bad =
                    || format!("line {}: not start,end,asn,organisation: {:.60}", n + 1, line);
                let mut parts = line.splitn(4, ',');
                let (Some(start), Some(end), Some(number)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(bad());
                };
                let number: u32 = number.trim().parse().map_err(|_| bad())?;
                let org = parts.next().unwrap_or_default().trim();
                let org = org
                    .strip_prefix('"')
                    .and_then(|o| o.strip_suffix('"'))
                    .map_or_else(|| org.to_owned(), |o| o.replace("\"\"", "\""));
                db.orgs.entry(number).or_insert(org);
                match (start.trim().parse::<IpAddr>(), end.trim().parse::<IpAddr>()) {
                    (Ok(IpAddr::V4(a)), Ok(IpAddr::V4(b))) if a <= b => {
                        db.v4.push((u32::from(a), u32::from(b), number));
                    }
                    (Ok(IpAddr::V6(a)), Ok(IpAddr::V6(b))) if a <= b => {
                        db.v6.push((u128::from(a), u128::from(b), number));
                    }
                    _ => return Err(bad()),
                }
            }
        }
        db.v4.sort_unstable();
        db.v6.sort_unstable();
        Ok(db)
    }

    /// The files in `dir`; `None` when neither is there.
    pub fn open_dir(dir: &Path) -> Result<Option<AsnDb>, CityDbError> {
        let mut texts = Vec::new();
        for name in ASN_FILES {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(t) => texts.push(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(CityDbError {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        if texts.is_empty() {
            return Ok(None);
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        AsnDb::parse(&refs)
            .map(Some)
            .map_err(|reason| CityDbError { path: dir.display().to_string(), reason })
    }

    /// The AS an address is in, if a range holds it.
    pub fn lookup(&self, ip: IpAddr) -> Option<Asn> {
        fn find<T: Ord + Copy>(ranges: &[(T, T, u32)], x: T) -> Option<u32> {
            let i = ranges.partition_point(|r| r.0 <= x).checked_sub(1)?;
            let (_, end, number) = ranges[i];
            (x <= end).then_some(number)
        }
        let number = match ip {
            IpAddr::V4(v4) => find(&self.v4, u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => find(&self.v4, u32::from(v4)),
                None => find(&self.v6, u128::from(v6)),
            },
        }?;
        Some(Asn { number, org: self.orgs.get(&number).cloned().unwrap_or_default() })
    }
}

impl Geo {
    /// Locates with this city database, and the bundled country ranges as fallback.
    pub fn with_city_db(city: CityDb) -> Geo {
        Geo { city: Some(city), asn: None }
    }

    /// The same, with ASN data read from `dir` on first use.
    pub fn with_asn_dir(mut self, dir: &Path) -> Geo {
        self.asn = Some(LazyAsn { dir: dir.to_owned(), db: OnceLock::new() });
        self
    }

    /// The same, with this ASN data.
    pub fn with_asn_db(mut self, db: AsnDb) -> Geo {
        let cell = OnceLock::new();
        let _ = cell.set(Some(db));
        self.asn = Some(LazyAsn { dir: std::path::PathBuf::new(), db: cell });
        self
    }

    /// ASN data was given: networks are compared by owner.
    pub fn owner_level(&self) -> bool {
        self.asn.is_some()
    }

    /// Who owns the address's network (its autonomous system), when ASN data is given and has
    /// it. Data that cannot be read is logged once and treated as absent.
    pub fn owner(&self, ip: IpAddr) -> Option<Asn> {
        let lazy = self.asn.as_ref()?;
        let db = lazy.db.get_or_init(|| match AsnDb::open_dir(&lazy.dir) {
            Ok(db) => db,
            Err(e) => {
                tracing::warn!(error = %e, "ASN data unusable: networks are compared by /24 and /48");
                None
            }
        });
        db.as_ref()?.lookup(ip)
    }

    /// What makes two addresses "the same network": their AS when it is known, else `fallback`
    /// (the /24 or /48). AS keys have bit 126 set, which neither fallback key has.
    pub fn network_key(&self, ip: IpAddr, fallback: impl Fn(IpAddr) -> u128) -> u128 {
        match self.owner(ip) {
            Some(asn) => (1u128 << 126) | u128::from(asn.number),
            None => fallback(ip),
        }
    }

    /// Where an address is, as far as the bundled table (and the city database) know.
    pub fn locate(&self, ip: IpAddr) -> Place {
        let country = country_of(ip);
        match self.city.as_ref().and_then(|c| c.lookup(ip)) {
            Some(mut place) => {
                place.country = place.country.or(country);
                place
            }
            None => Place { country, city: None, point: None },
        }
    }
}

/// Great-circle distance (km) between two coordinates.
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// Where a place can be: its point, or its country's boxes.
fn boxes_of(place: &Place) -> Option<Vec<GeoBox>> {
    if let Some(p) = place.point {
        return Some(vec![GeoBox { south: p.lat, north: p.lat, west: p.lon, east: p.lon }]);
    }
    regions().boxes.get(&place.country?).cloned()
}

/// A lower bound (km) on the distance between two places; `None` when either is unknown.
pub fn min_distance_km(a: &Place, b: &Place) -> Option<f64> {
    if let (Some(pa), Some(pb)) = (a.point, b.point) {
        return Some(
            (haversine_km(pa.lat, pa.lon, pb.lat, pb.lon) - pa.radius_km - pb.radius_km).max(0.0),
        );
    }
    if a.point.is_none() && b.point.is_none() && a.country.is_some() && a.country == b.country {
        return Some(0.0);
    }
    if let (None, None, Some(ca), Some(cb)) = (a.point, b.point, a.country, b.country) {
        return country_distance_km(ca, cb);
    }
    let (boxes_a, boxes_b) = (boxes_of(a)?, boxes_of(b)?);
    let radius = a.point.map_or(0.0, |p| p.radius_km) + b.point.map_or(0.0, |p| p.radius_km);
    // The places can be in any of their boxes: the bound is the smallest over the pairs.
    let km = boxes_a
        .iter()
        .flat_map(|ba| boxes_b.iter().map(move |bb| box_distance_km(ba, bb)))
        .fold(f64::INFINITY, f64::min);
    Some((km - radius).max(0.0))
}

/// The bound between two countries' regions, computed once per pair and thread (the pairs a
/// trail meets are few; each costs a box-by-box minimum).
fn country_distance_km(a: Country, b: Country) -> Option<f64> {
    thread_local! {
        static CACHE: std::cell::RefCell<HashMap<(Country, Country), Option<f64>>> =
            std::cell::RefCell::new(HashMap::new());
    }
    let key = if a <= b { (a, b) } else { (b, a) };
    if let Some(km) = CACHE.with(|c| c.borrow().get(&key).copied()) {
        return km;
    }
    let boxes = &regions().boxes;
    let km = boxes.get(&a).zip(boxes.get(&b)).map(|(ra, rb)| {
        ra.iter()
            .flat_map(|ba| rb.iter().map(move |bb| box_distance_km(ba, bb)))
            .fold(f64::INFINITY, f64::min)
    });
    CACHE.with(|c| c.borrow_mut().insert(key, km));
    km
}

/// A lower bound (km) on the distance between any point of one box and any point of another.
///
/// The haversine of the central angle is `hav(Δφ) + cos φ₁ · cos φ₂ · hav(Δλ)`, a sum of
/// non-negative terms; each term is bounded below on its own — the latitude gap, the smallest
/// `cos φ` of each box (at its edge farthest from the equator), the longitude gap on the circle —
/// so their sum bounds the haversine, and the distance, from below for every pair of points.
fn box_distance_km(ba: &GeoBox, bb: &GeoBox) -> f64 {
    let hav = |deg: f64| (deg.to_radians() / 2.0).sin().powi(2);
    let lat_gap = (bb.south - ba.north).max(ba.south - bb.north).max(0.0);
    let min_cos = |b: &GeoBox| b.south.to_radians().cos().min(b.north.to_radians().cos()).max(0.0);
    let lon_gap = {
        let east = |from: f64, to: f64| (to - from).rem_euclid(360.0);
        let overlap = ba.west <= bb.east && bb.west <= ba.east;
        if overlap { 0.0 } else { east(ba.east, bb.west).min(east(bb.east, ba.west)) }
    };
    let h = hav(lat_gap) + min_cos(ba) * min_cos(bb) * hav(lon_gap.min(180.0));
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn asn_ranges_are_found_at_their_edges_and_bad_lines_are_errors() {
        let v4 = "1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"\n1.0.4.0,1.0.7.255,38803,Gtelecom Pty Ltd\n";
        let v6 = "2001:200::,2001:200:1b9:ffff:ffff:ffff:ffff:ffff,2500,\"WIDE \"\"Project\"\"\"\n";
        let db = AsnDb::parse(&[v6, v4]).unwrap();
        let at = |ip: &str| db.lookup(ip.parse().unwrap());
        assert_eq!(at("1.0.0.0"), Some(Asn { number: 13335, org: "Cloudflare, Inc.".into() }));
        assert_eq!(at("1.0.0.255").map(|a| a.number), Some(13335));
        assert_eq!(at("1.0.1.0"), None, "between ranges");
        assert_eq!(at("1.0.7.255").map(|a| a.number), Some(38803));
        assert_eq!(at("0.255.255.255"), None, "before the first");
        assert_eq!(at("::ffff:1.0.4.9").map(|a| a.number), Some(38803), "IPv4-mapped");
        assert_eq!(
            at("2001:200:1b9::1"),
            Some(Asn { number: 2500, org: "WIDE \"Project\"".into() })
        );
        assert_eq!(at("2001:200:1ba::1"), None);
        for bad in [
            "1.0.0.0,1.0.0.255",
            "1.0.0.9,1.0.0.1,1,x",
            "1.0.0.0,::1,1,x",
            "a,b,1,x",
            "1.0.0.0,1.0.0.1,AS1,x",
        ] {
            assert!(AsnDb::parse(&[bad]).unwrap_err().starts_with("line 1"), "{bad}");
        }
    }

    #[test]
    fn asn_data_beside_the_policy_is_read_on_first_use() {
        let dir = std::env::temp_dir().join(format!("idc-guard-asn-{}", fastrand::u64(..)));
        std::fs::create_dir_all(dir.join(CITY_DB_DIR)).unwrap();
        let policy = dir.join("access-policy.toml");
        assert!(!Geo::for_policy(&policy, None).unwrap().owner_level());
        std::fs::write(
            dir.join(CITY_DB_DIR).join("asn-ipv4.csv"),
            "8.8.8.0,8.8.8.255,15169,Google LLC\n",
        )
        .unwrap();
        let geo = Geo::for_policy(&policy, None).unwrap();
        assert!(geo.owner_level());
        assert_eq!(geo.owner("8.8.8.8".parse().unwrap()).map(|a| a.number), Some(15169));
        // A damaged file: networks fall back to /24 rather than failing the scan.
        std::fs::write(dir.join(CITY_DB_DIR).join("asn-ipv4.csv"), "8.8.8.0,garbage\n").unwrap();
        let geo = Geo::for_policy(&policy, None).unwrap();
        assert_eq!(geo.owner("8.8.8.8".parse().unwrap()), None);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn countries_come_from_the_embedded_table() {
        // First rows of the source data (APNIC test ranges allocated to AU/CN/JP).
        assert_eq!(country_of(ip("1.0.0.1")).map(|c| c.to_string()), Some("AU".into()));
        assert_eq!(country_of(ip("1.0.1.1")).map(|c| c.to_string()), Some("CN".into()));
        assert_eq!(country_of(ip("1.0.16.1")).map(|c| c.to_string()), Some("JP".into()));
        assert_eq!(country_of(ip("2001:200::1")).map(|c| c.to_string()), Some("AU".into()));
        assert_eq!(
            country_of(ip("::ffff:1.0.0.1")),
            country_of(ip("1.0.0.1")),
            "IPv4-mapped IPv6 uses the IPv4 table"
        );
        // Private and documentation addresses have no country.
        for private in [
            "10.1.2.3",
            "192.168.0.1",
            "127.0.0.1",
            "198.51.100.7",
            "100.64.1.1",
            "fe80::1",
            "fd00::1",
        ] {
            assert_eq!(country_of(ip(private)), None, "{private}");
        }
        let v4: Vec<[u8; 4]> = table().v4_starts.iter().collect();
        let v6: Vec<[u8; 16]> = table().v6_starts.iter().collect();
        assert!(v4.len() > 100_000 && v6.len() > 50_000, "{} / {}", v4.len(), v6.len());
        assert!(v4.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
        assert!(v6.windows(2).all(|w| w[0] < w[1]));
        assert!(regions().boxes.len() > 200);
        assert_eq!(Country::from_name("United Kingdom"), Country::parse("GB"));
        assert_eq!(Country::from_name("germany"), Country::parse("DE"));
        assert_eq!(Country::from_name("Russia"), Country::parse("RU"));
        assert_eq!(Country::from_name("Atlantis"), None);
    }

    #[test]
    fn haversine_matches_known_distances() {
        // Berlin – Sydney ≈ 16,100 km; Berlin – Munich ≈ 504 km.
        let d = haversine_km(52.52, 13.405, -33.8688, 151.2093);
        assert!((d - 16_090.0).abs() < 60.0, "{d}");
        let d = haversine_km(52.52, 13.405, 48.1351, 11.582);
        assert!((d - 504.0).abs() < 5.0, "{d}");
    }

    fn country(cc: &str) -> Place {
        Place { country: Country::parse(cc), ..Default::default() }
    }

    #[test]
    fn country_precision_gives_a_lower_bound() {
        assert_eq!(min_distance_km(&country("DE"), &country("AT")), Some(0.0), "neighbours");
        assert_eq!(min_distance_km(&country("DE"), &country("DE")), Some(0.0));
        let de_au = min_distance_km(&country("DE"), &country("AU")).unwrap();
        // Real closest points are > 10,000 km apart; the bound must not exceed Berlin–Sydney.
        assert!(de_au > 8_000.0 && de_au < 16_090.0, "{de_au}");
        let us_de = min_distance_km(&country("US"), &country("DE")).unwrap();
        // Maine to the German border is about 5,500 km.
        assert!(us_de > 4_000.0 && us_de < 5_500.0, "{us_de}");
        // Across the antimeridian: New Zealand to Chile.
        let nz_cl = min_distance_km(&country("NZ"), &country("CL"));
        assert!(nz_cl.is_some());
        assert_eq!(min_distance_km(&country("DE"), &Place::default()), None);
    }

    /// The Bering Strait: as countries, the US and Russia touch (Little and Big Diomede), so no
    /// trip between them is too fast; as cities, Nome and Anadyr are 820 km apart.
    #[test]
    fn the_fetched_city_layout_separates_alaska_from_chukotka() {
        assert_eq!(min_distance_km(&country("US"), &country("RU")), Some(0.0));
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/city-test-flat.mmdb");
        let geo = Geo::with_city_db(CityDb::open(&path).unwrap());
        let nome = geo.locate(ip("198.18.0.7"));
        let anadyr = geo.locate(ip("198.18.1.7"));
        assert_eq!((nome.city.as_deref(), anadyr.city.as_deref()), (Some("Nome"), Some("Anadyr")));
        let km = min_distance_km(&nome, &anadyr).unwrap();
        assert!(km > 600.0 && km < 820.0, "a lower bound: 820 km less both accuracies: {km}");
        // Known only to its country: the country's centre is no place to measure from.
        let somewhere = geo.locate(ip("198.18.2.7"));
        assert_eq!(
            (somewhere.country.map(|c| c.to_string()), somewhere.point),
            (Some("US".into()), None)
        );
    }

    #[test]
    fn the_city_database_refines_places() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/city-test.mmdb");
        let geo = Geo::with_city_db(CityDb::open(&path).unwrap());
        let berlin = geo.locate(ip("198.51.100.10"));
        assert_eq!(berlin.city.as_deref(), Some("Berlin"));
        assert_eq!(berlin.country.map(|c| c.to_string()), Some("DE".into()));
        let sydney = geo.locate(ip("203.0.113.10"));
        let d = min_distance_km(&berlin, &sydney).unwrap();
        assert!((d - (16_090.0 - 40.0)).abs() < 80.0, "{d}");
        // Not in the city file: the country table answers.
        assert_eq!(geo.locate(ip("1.0.0.1")).country, Country::parse("AU"));
        assert!(geo.locate(ip("1.0.0.1")).point.is_none());
        let err = CityDb::open(Path::new("/nonexistent.mmdb")).err().unwrap().to_string();
        assert!(err.contains("/nonexistent.mmdb"), "{err}");
    }

    #[test]
    fn every_country_the_address_table_can_return_has_a_region() {
        let t = table();
        let codes: BTreeSet<[u8; 2]> =
            t.v4_codes.iter().chain(t.v6_codes.iter()).filter(|c| c != b"--").collect();
        let missing: Vec<String> = codes
            .iter()
            .filter(|c| !regions().boxes.contains_key(&Country(**c)))
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        assert!(codes.len() > 200, "{}", codes.len());
        assert!(missing.is_empty(), "countries without a region: {missing:?}");
    }

    #[test]
    fn far_off_parts_are_inside_their_countrys_region() {
        let inside = |cc: &str, lat: f64, lon: f64| {
            regions().boxes[&Country::parse(cc).unwrap()]
                .iter()
                .any(|b| b.south <= lat && lat <= b.north && b.west <= lon && lon <= b.east)
        };
        for (cc, place, lat, lon) in [
            ("US", "Anchorage", 61.22, -149.9),
            ("US", "Honolulu", 21.31, -157.86),
            ("US", "Attu", 52.9, 172.9),
            ("US", "Utqiagvik", 71.29, -156.79),
            ("RU", "Kaliningrad", 54.71, 20.51),
            ("RU", "Vladivostok", 43.12, 131.89),
            ("RU", "Anadyr", 64.73, 177.5),
            ("RU", "Uelen", 66.16, -169.81),
            ("FJ", "Suva", -18.14, 178.44),
            ("FJ", "Lakeba", -18.2, -178.8),
            ("NZ", "Auckland", -36.85, 174.76),
            ("NZ", "Chatham Islands", -43.95, -176.56),
            ("KI", "Tarawa", 1.45, 172.97),
            ("KI", "Kiritimati", 1.87, -157.43),
            ("CL", "Easter Island", -27.11, -109.35),
            ("EC", "Galápagos", -0.74, -90.31),
            ("ES", "Tenerife", 28.29, -16.63),
            ("PT", "Ponta Delgada", 37.74, -25.67),
            ("RS", "Belgrade", 44.79, 20.45),
            ("KZ", "Almaty", 43.24, 76.89),
            ("LK", "Colombo", 6.93, 79.86),
            ("MM", "Yangon", 16.87, 96.2),
            ("LY", "Tripoli", 32.89, 13.19),
            ("CG", "Brazzaville", -4.26, 15.24),
        ] {
            assert!(inside(cc, lat, lon), "{place} ({lat}, {lon}) is outside {cc}'s region");
        }
    }

    /// Sampled: for points anywhere in two countries' regions, the bound never exceeds their
    /// great-circle distance.
    #[test]
    fn the_bound_never_exceeds_the_distance_between_points_of_the_regions() {
        let t = regions();
        let countries: Vec<&Country> = t.boxes.keys().collect();
        let mut rng = fastrand::Rng::with_seed(7);
        let point_in = |c: &Country, rng: &mut fastrand::Rng| {
            let regions = &t.boxes[c];
            let b = regions[rng.usize(..regions.len())];
            let lat = b.south + rng.f64() * (b.north - b.south);
            let lon = b.west + rng.f64() * (b.east - b.west);
            (lat, lon)
        };
        for _ in 0..20_000 {
            let (a, b) =
                (countries[rng.usize(..countries.len())], countries[rng.usize(..countries.len())]);
            let (pa, pb) = (point_in(a, &mut rng), point_in(b, &mut rng));
            let bound =
                min_distance_km(&country(&a.to_string()), &country(&b.to_string())).unwrap();
            let real = haversine_km(pa.0, pa.1, pb.0, pb.1);
            assert!(
                bound <= real + 1e-6,
                "{a} → {b}: bound {bound:.0} km > {real:.0} km between {pa:?} and {pb:?}"
            );
        }
    }

    #[test]
    fn distant_countries_across_the_antimeridian_are_far_apart() {
        let new_york = Place {
            country: Country::parse("US"),
            city: Some("New York".into()),
            point: Some(Point { lat: 40.71, lon: -74.0, radius_km: 50.0 }),
        };
        let ru = min_distance_km(&new_york, &country("RU")).unwrap();
        // About 5,600 km in truth (over the pole to Franz Josef Land); the bound is looser, and
        // 40 minutes apart is still impossible travel (> 6,000 km/h).
        assert!(ru > 4_000.0, "New York to anywhere in Russia: {ru:.0} km");
        let fj_de = min_distance_km(&country("FJ"), &country("DE")).unwrap();
        assert!(fj_de > 12_000.0 && fj_de < 16_000.0, "{fj_de:.0}");
        // Alaska is in the US: the bound to Russia is the Bering Strait, not a continent.
        let us_ru = min_distance_km(&country("US"), &country("RU")).unwrap();
        assert!(us_ru < 100.0, "{us_ru:.0}");
    }
}
