#!/usr/bin/env python3
"""Writes shared/testdata/city-test.mmdb: a tiny City-shaped MMDB for tests of the optional
city database (documentation addresses only). Needs mmdb-writer==0.2.7 and netaddr==1.3.0:
  python3 -m venv /tmp/mm && /tmp/mm/bin/pip install mmdb-writer==0.2.7 netaddr==1.3.0
  /tmp/mm/bin/python scripts/geo/make-test-city-mmdb.py
"""
from mmdb_writer import MMDBWriter
from netaddr import IPSet

CITIES = {
    # network: (iso country, city, lat, lon, accuracy radius km)
    "198.51.100.0/24": ("DE", "Berlin", 52.52, 13.405, 20),
    "203.0.113.0/24": ("AU", "Sydney", -33.8688, 151.2093, 20),
    "192.0.2.0/24": ("DE", "Munich", 48.1351, 11.582, 20),
}

w = MMDBWriter(ip_version=6, database_type="idc-guard-test-City", languages=["en"],
               description={"en": "idc-guard test data"}, ipv4_compatible=True)
for net, (cc, city, lat, lon, radius) in CITIES.items():
    w.insert_network(IPSet([net]), {
        "country": {"iso_code": cc},
        "city": {"names": {"en": city}},
        "location": {"latitude": lat, "longitude": lon, "accuracy_radius": radius},
    })
w.to_db_file("shared/testdata/city-test.mmdb")

# The layout of the city database `scripts/geo/fetch-city-db.sh` installs (ip-location-db's
# GeoLite2 City: flat fields, no accuracy radius; an address known only to its country carries
# the country's centre and no city). Nome (Alaska) and Anadyr (Chukotka) are 80 km apart at the
# Bering Strait as countries go, 820 km apart as cities.
FLAT = {
    "198.18.0.0/24": ("US", "Nome", 64.5011, -165.4064),
    "198.18.1.0/24": ("RU", "Anadyr", 64.7337, 177.5089),
    "198.18.2.0/24": ("US", "", 37.751, -97.822),
}
w = MMDBWriter(ip_version=4, database_type="city", languages=["en"],
               description={"en": "idc-guard test data, ip-location-db layout"})
for net, (cc, city, lat, lon) in FLAT.items():
    w.insert_network(IPSet([net]), {"city": city, "country_code": cc, "latitude": lat, "longitude": lon,
                                    "postcode": "", "state1": "", "state2": "", "timezone": ""})
w.to_db_file("shared/testdata/city-test-flat.mmdb")
