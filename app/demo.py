"""`luyue demo`: a realistic demo on a fresh machine.

Loads Shanghai and Hangzhou warehouses and stores, about 300 SKUs with valid
EAN-13 codes, bins, stock, floor users of every role, API tokens and a few
dozen orders, then serves the app while a background thread keeps a gentle
stream of new orders coming and releases presales when they fall due.

Everything goes through the same domain functions as the API and the CSV
import (`masterdata.put_node/put_sku/count_stock`, `access.create_user`,
`intake.submit`), and everything but the clock is deterministic: the same
seed gives the same nodes, SKUs, bins, customers and orders.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import random
import threading
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import access, masterdata
from app.barcodes import ean13
from app.db import Database
from app.fulfilment import clock, intake
from app.fulfilment.errors import Refusal
from app.fulfilment.geo import haversine_km
from app.models import (
    BinStock,
    Channel,
    Fulfilment,
    FulfilmentStatus,
    Location,
    Node,
    Order,
    Sku,
    Stock,
    User,
)

log = logging.getLogger(__name__)

SEED = 20261124
CHANNEL = "tmall-demo"
ADMIN_CHANNEL = "ops"
DEMO_ORDERS = 60
# The background stream: one order about every STREAM_SECONDS, at most STREAM_LIMIT per run.
STREAM_SECONDS = 20.0
STREAM_LIMIT = 180
# The node whose presence says the demo master data is loaded.
MAIN_NODE = "SH-PD-01"

DAILY, FOOD, DIGITAL = "daily", "food", "digital"


# --- nodes ---------------------------------------------------------------------

@dataclass(frozen=True)
class NodeSpec:
    code: str
    name: str
    kind: str
    province: str
    city: str
    lat: float
    lon: float
    daily_capacity: int
    same_city_radius_km: float = 0
    # Warehouses: the categories carried in full. Stores: how many SKUs of each.
    carries: tuple[str, ...] = ()
    shelf: dict[str, int] = field(default_factory=dict)


NODES: tuple[NodeSpec, ...] = (
    NodeSpec("SH-PD-01", "上海浦东仓", "warehouse", "上海市", "上海市", 31.2200, 121.5400, 5000,
             carries=(DAILY, FOOD)),
    NodeSpec("SH-MH-01", "上海闵行数码仓", "warehouse", "上海市", "上海市", 31.1046, 121.3937, 3000,
             carries=(DAILY, DIGITAL)),
    NodeSpec("SH-JA-S1", "静安寺门店", "store", "上海市", "上海市", 31.2235, 121.4453, 120, 6,
             shelf={DAILY: 25, FOOD: 25, DIGITAL: 12}),
    NodeSpec("HZ-YH-01", "杭州余杭仓", "warehouse", "浙江省", "杭州市", 30.2925, 120.0080, 4000,
             carries=(DAILY, FOOD)),
    NodeSpec("HZ-XH-S1", "西湖文三路店", "store", "浙江省", "杭州市", 30.2775, 120.1290, 80, 7,
             shelf={DAILY: 25, FOOD: 25}),
    NodeSpec("HZ-BJ-S1", "滨江星光数码店", "store", "浙江省", "杭州市", 30.2085, 120.2120, 80, 5,
             shelf={DAILY: 12, DIGITAL: 28}),
)
MAIN_STORE = "SH-JA-S1"


# --- users ---------------------------------------------------------------------

@dataclass(frozen=True)
class UserSpec:
    code: str
    name: str
    role: str
    pin: str
    node: str | None
    language: str = "zh"


USERS: tuple[UserSpec, ...] = (
    UserSpec("P001", "张伟", "picker", "1111", "SH-PD-01"),
    UserSpec("P002", "Tom Wilson", "picker", "2222", "SH-PD-01", "en"),
    UserSpec("B001", "李娜", "packer", "3333", "SH-PD-01"),
    UserSpec("D001", "王强", "dock", "4444", "SH-PD-01"),
    UserSpec("L001", "陈静", "lead", "5555", "SH-PD-01"),
    UserSpec("A001", "刘洋", "admin", "9999", "SH-PD-01"),
    UserSpec("P101", "赵敏", "picker", "1212", "SH-JA-S1"),
    UserSpec("B101", "孙丽", "packer", "3434", "SH-JA-S1"),
    UserSpec("D101", "周杰", "dock", "4545", "SH-JA-S1"),
    UserSpec("R101", "吴磊", "rider", "6666", "SH-JA-S1"),
    UserSpec("R102", "郑勇", "rider", "7777", "SH-JA-S1"),
    UserSpec("L101", "黄芳", "lead", "5656", "SH-JA-S1"),
)


# --- the catalogue ---------------------------------------------------------------

# Invented brands, each with its own GS1 company prefix (China: 690-699).
BRANDS: dict[str, dict[str, str]] = {
    DAILY: {"悦家": "6901832", "净享": "6902417", "禾木": "6910354", "云朵": "6911726", "简素": "6920583",
            "森屿": "6921947"},
    FOOD: {"谷源": "6902265", "鲜时": "6903518", "味道坊": "6912840", "田园记": "6913372", "海川": "6922691",
           "茶语": "6923105"},
    DIGITAL: {"极客": "6904729", "迅联": "6914463", "电小二": "6915208", "拾光": "6924836", "酷动": "6925570"},
}

# (product, [(specification, weight in grams), ...]) per category.
PRODUCTS: dict[str, list[tuple[str, list[tuple[str, int]]]]] = {
    DAILY: [
        ("洗衣液", [("薰衣草 2kg", 2100), ("柠檬清香 2kg", 2100), ("除菌 3kg", 3150), ("婴儿专用 1kg", 1080)]),
        ("洗衣凝珠", [("30颗", 480)]),
        ("抽纸", [("3层100抽×6包", 620), ("3层120抽×10包", 1150), ("原木 4层90抽×18包", 1850)]),
        ("卷纸", [("4层140g×10卷", 1450), ("4层140g×27卷", 3900)]),
        ("牙膏", [("薄荷 120g", 150), ("美白 140g", 170), ("草本 180g", 215), ("儿童 60g", 80)]),
        ("牙刷", [("软毛 2支装", 45), ("竹炭 4支装", 85)]),
        ("洗发水", [("去屑 400ml", 460), ("控油 750ml", 830), ("柔顺 400ml", 460)]),
        ("护发素", [("500ml", 560)]),
        ("沐浴露", [("牛奶 1L", 1100), ("樱花 500ml", 560), ("薄荷 750ml", 830)]),
        ("洗洁精", [("柠檬 1.5kg", 1580), ("西柚 1kg", 1060)]),
        ("洗手液", [("500ml", 560), ("补充装 400ml", 420)]),
        ("垃圾袋", [("中号 45×50cm 100只", 420), ("大号 60×80cm 50只", 560), ("抽绳 30只", 300)]),
        ("保鲜膜", [("30m", 260)]),
        ("保鲜袋", [("中号 100只", 230)]),
        ("湿巾", [("80抽×3包", 1080), ("卫生湿巾 10片×10包", 600)]),
        ("毛巾", [("纯棉 白", 110), ("纯棉 灰", 110), ("纯棉 蓝", 110)]),
        ("浴巾", [("70×140cm", 420)]),
        ("衣架", [("防滑 10只装", 800), ("儿童 20只装", 600)]),
        ("收纳盒", [("小号", 300), ("中号", 520), ("大号", 900)]),
        ("拖鞋", [("37-38码", 280), ("39-40码", 300), ("41-42码", 320), ("43-44码", 340)]),
        ("消毒液", [("1.2kg", 1280)]),
        ("衣物除菌液", [("1L", 1080)]),
        ("厨房纸", [("75节×4卷", 700)]),
        ("棉签", [("200支", 90)]),
        ("口罩", [("一次性 50只", 180), ("KN95 10只", 90)]),
        ("晾衣夹", [("20只", 200)]),
        ("洁厕液", [("500g", 560)]),
        ("地板清洁剂", [("2L", 2150)]),
        ("一次性手套", [("100只", 220)]),
        ("蚊香液", [("3瓶+1器", 210)]),
        ("洗脸巾", [("100抽", 280)]),
        ("护手霜", [("50g", 70)]),
        ("暖宝宝", [("10片", 400)]),
        ("保温杯", [("500ml 黑", 350), ("500ml 白", 350)]),
        ("雨伞", [("三折 黑", 360), ("三折 藏青", 360)]),
    ],
    FOOD: [
        ("东北大米", [("5kg", 5050), ("10kg", 10100), ("长粒香 2.5kg", 2530)]),
        ("食用油", [("花生油 5L", 4600), ("菜籽油 5L", 4600), ("玉米油 1.8L", 1680)]),
        ("酱油", [("生抽 500ml", 560), ("老抽 500ml", 560), ("特级 1.28L", 1420)]),
        ("镇江香醋", [("500ml", 600)]),
        ("方便面", [("红烧牛肉 5连包", 560), ("酸菜 5连包", 580), ("番茄鸡蛋 5连包", 560), ("杯面 12杯", 1350)]),
        ("纯牛奶", [("250ml×12", 3200), ("250ml×24", 6300), ("低脂 250ml×12", 3200)]),
        ("酸奶", [("原味 200g×10", 2200), ("草莓 200g×10", 2200)]),
        ("矿泉水", [("550ml×24", 13600), ("1.5L×12", 18400)]),
        ("苏打水", [("330ml×24", 8300)]),
        ("饼干", [("苏打 400g", 430), ("曲奇 300g", 330), ("全麦 500g", 530)]),
        ("每日坚果", [("25g×30", 800)]),
        ("碧根果", [("200g", 220)]),
        ("腰果", [("500g", 520)]),
        ("西湖龙井", [("100g", 150), ("250g", 330)]),
        ("铁观音", [("250g", 280)]),
        ("红茶", [("200g", 230)]),
        ("咖啡", [("挂耳 10包", 120), ("速溶 30条", 480), ("咖啡豆 500g", 520)]),
        ("薯片", [("原味 70g", 80), ("番茄味 70g", 80), ("黄瓜味 70g", 80)]),
        ("巧克力", [("黑巧 100g", 110), ("牛奶 100g", 110)]),
        ("速冻水饺", [("猪肉白菜 1kg", 1020), ("三鲜 1kg", 1020)]),
        ("汤圆", [("黑芝麻 500g", 520)]),
        ("蜂蜜", [("500g", 620)]),
        ("红枣", [("500g", 520)]),
        ("枸杞", [("250g", 260)]),
        ("燕麦片", [("1kg", 1050)]),
        ("挂面", [("1kg", 1020)]),
        ("榨菜", [("80g×10", 850)]),
        ("辣椒酱", [("280g", 330)]),
        ("蚝油", [("520g", 610)]),
        ("料酒", [("500ml", 580)]),
        ("可乐", [("330ml×24", 8300)]),
        ("橙汁", [("1L", 1080)]),
        ("啤酒", [("500ml×12", 6500)]),
        ("绍兴黄酒", [("500ml", 900)]),
        ("鸡蛋", [("30枚", 1800)]),
        ("紫菜", [("50g", 60)]),
        ("海苔", [("4g×12", 90)]),
        ("火腿肠", [("10支", 420)]),
        ("午餐肉罐头", [("340g", 380)]),
        ("八宝粥", [("360g×12", 4700)]),
        ("豆浆粉", [("30条", 900)]),
    ],
    DIGITAL: [
        ("USB-C数据线", [("1m 白", 30), ("2m 黑", 45), ("编织 1.5m", 40)]),
        ("USB-A转C数据线", [("1m", 30)]),
        ("快充充电器", [("20W", 50), ("33W", 60), ("65W 氮化镓", 110), ("双口 45W", 90)]),
        ("充电宝", [("10000mAh", 210), ("20000mAh", 400), ("磁吸 5000mAh", 150)]),
        ("蓝牙耳机", [("入耳式 白", 55), ("入耳式 黑", 55), ("主动降噪", 60)]),
        ("头戴式耳机", [("黑", 260)]),
        ("手机壳", [("6.1英寸 透明", 30), ("6.1英寸 磨砂黑", 32), ("6.7英寸 透明", 35), ("6.7英寸 磨砂黑", 37)]),
        ("钢化膜", [("6.1英寸 2片装", 40), ("6.7英寸 2片装", 45), ("防窥 6.1英寸", 40)]),
        ("无线鼠标", [("静音 白", 80), ("静音 黑", 80), ("蓝牙双模", 90)]),
        ("机械键盘", [("87键 红轴", 780), ("87键 青轴", 780)]),
        ("无线键盘", [("薄膜", 520)]),
        ("U盘", [("64GB", 15), ("128GB", 15), ("256GB", 15)]),
        ("TF存储卡", [("128GB", 5), ("256GB", 5)]),
        ("HDMI线", [("2m", 150), ("5m", 320)]),
        ("插线板", [("6位 1.8m", 420), ("8位 3m", 560), ("USB 3位", 300)]),
        ("车载充电器", [("双口", 60)]),
        ("手机支架", [("桌面", 180), ("车载", 120)]),
        ("蓝牙音箱", [("便携", 350)]),
        ("电池", [("5号 8粒", 190), ("7号 8粒", 95)]),
        ("读卡器", [("多合一", 20)]),
        ("扩展坞", [("USB-C 6合1", 120)]),
        ("鼠标垫", [("大号", 300)]),
        ("平板保护套", [("11英寸", 250)]),
        ("网线", [("六类 5m", 200)]),
        ("笔记本支架", [("铝合金", 650)]),
        ("耳机转接头", [("USB-C转3.5mm", 10)]),
        ("无线充电板", [("15W", 120)]),
        ("自拍杆", [("蓝牙", 180)]),
        ("电脑摄像头", [("1080P", 150)]),
    ],
}
# How many SKUs per category: products get a second brand until the count is reached.
TARGETS = {DAILY: 100, FOOD: 105, DIGITAL: 93}
PRESALE_PRODUCTS = (("茶语", "明前西湖龙井 特级 250g 礼盒（预售）", 650),
                    ("味道坊", "中秋月饼礼盒 8枚装（预售）", 1200))


@dataclass(frozen=True)
class SkuSpec:
    code: str
    name: str
    category: str
    weight_g: int
    barcodes: tuple[str, ...]
    presale: bool = False


@dataclass(frozen=True)
class Bin:
    location: str
    sku: str
    on_hand: int


@dataclass(frozen=True)
class World:
    """The demo's master data and the facts the order generator needs."""

    skus: tuple[SkuSpec, ...]
    bins: dict[str, tuple[Bin, ...]]            # node code -> counted bins
    on_hand: dict[str, dict[str, int]]          # node code -> sku -> units
    out_of_stock: tuple[str, ...]               # SKUs no node has
    scarce: tuple[str, ...]                     # SKUs with a unit or two at one node
    presale: tuple[str, ...]

    @functools.cached_property
    def by_category(self) -> dict[str, list[str]]:
        """SKUs some node carries, per category (no presale, none out of stock)."""
        pools: dict[str, list[str]] = {DAILY: [], FOOD: [], DIGITAL: []}
        skip = set(self.out_of_stock) | set(self.presale)
        for s in self.skus:
            if s.code not in skip:
                pools[s.category].append(s.code)
        return pools

    def shelf(self, node: str) -> list[str]:
        return sorted(s for s, q in self.on_hand[node].items() if q >= 3)


@functools.lru_cache(maxsize=1)
def world() -> World:
    skus = _catalogue(random.Random(SEED))
    bins, out, scarce = _stock(skus, random.Random(SEED + 1))
    on_hand: dict[str, dict[str, int]] = {}
    for node, items in bins.items():
        totals: Counter[str] = Counter()
        for b in items:
            totals[b.sku] += b.on_hand
        on_hand[node] = dict(totals)
    return World(tuple(skus), bins, on_hand, out, scarce, tuple(s.code for s in skus if s.presale))


def _catalogue(rng: random.Random) -> list[SkuSpec]:
    rows: list[tuple[str, str, str, int]] = []  # category, brand, name, weight
    for category, products in PRODUCTS.items():
        brands = list(BRANDS[category])
        chosen = {product: [rng.choice(brands)] for product, _ in products}
        count = sum(len(variants) for _, variants in products)
        for product, variants in products:  # a second brand for the first products, to the target
            if count >= TARGETS[category]:
                break
            chosen[product].append(rng.choice([b for b in brands if b not in chosen[product]]))
            count += len(variants)
        for product, variants in products:
            for brand in chosen[product]:
                for spec, weight in variants:
                    rows.append((category, brand, f"{brand} {product} {spec}", weight))
    skus: list[SkuSpec] = []
    serial: Counter[str] = Counter()
    for n, (category, brand, name, weight) in enumerate(rows, start=1):
        prefix = BRANDS[category][brand]
        serial[brand] += rng.randint(1, 40)
        barcodes = [ean13(f"{prefix}{serial[brand]:05d}")]
        if rng.random() < 0.1:  # a second printed code: a multipack or the old packaging
            serial[brand] += 1
            barcodes.append(ean13(f"{prefix}{serial[brand]:05d}"))
        skus.append(SkuSpec(f"SKU-{n:04d}", name, category, weight, tuple(barcodes)))
    for brand, name, weight in PRESALE_PRODUCTS:
        category = next(c for c, brands in BRANDS.items() if brand in brands)
        serial[brand] += 100
        skus.append(SkuSpec(f"SKU-{len(skus) + 1:04d}", f"{brand} {name}", FOOD, weight,
                            (ean13(f"{BRANDS[category][brand]}{serial[brand]:05d}"),), presale=True))
    return skus


# Warehouse zones by category; stores keep everything on shelves in zone S.
ZONES = {DAILY: ("A", 8), FOOD: ("B", 8), DIGITAL: ("C", 4)}
BAYS, LEVELS = 10, 4


def _slots(zone: str, aisles: int, bays: int = BAYS, levels: int = LEVELS) -> list[str]:
    return [f"{zone}-{a:02d}-{b:02d}-{lvl}" for a in range(1, aisles + 1) for b in range(1, bays + 1)
            for lvl in range(1, levels + 1)]


def _stock(skus: list[SkuSpec], rng: random.Random) -> tuple[dict[str, tuple[Bin, ...]], tuple[str, ...],
                                                               tuple[str, ...]]:
    by_category: dict[str, list[SkuSpec]] = {DAILY: [], FOOD: [], DIGITAL: []}
    for s in skus:
        if not s.presale:
            by_category[s.category].append(s)
    out = tuple(rng.choice(by_category[c]).code for c in (DAILY, FOOD, DIGITAL))
    scarce = tuple(s.code for c in (DAILY, FOOD, DIGITAL)
                   for s in rng.sample([s for s in by_category[c] if s.code not in out], 2))
    presale = [s for s in skus if s.presale]

    bins: dict[str, tuple[Bin, ...]] = {}
    for node in NODES:
        items: list[Bin] = []
        if node.kind == "warehouse":
            for category in node.carries:
                zone, aisles = ZONES[category]
                slots = _slots(zone, aisles)
                rng.shuffle(slots)
                carried = by_category[category] + (presale if category == FOOD else [])
                for s in carried:
                    if s.code in out:
                        units = 0
                    elif s.code in scarce:
                        # One warehouse has a unit or two; the others have none.
                        units = rng.randint(1, 2) if node.code in ("SH-PD-01", "SH-MH-01") else 0
                    else:
                        heavy = s.weight_g >= 4000
                        units = rng.randint(20, 120) if heavy else rng.randint(40, 400)
                    primary = slots.pop()
                    if units >= 20 and rng.random() < 0.15:  # an overflow bin higher up
                        first = max(1, round(units * rng.uniform(0.3, 0.6)))
                        items.append(Bin(primary, s.code, first))
                        items.append(Bin(slots.pop(), s.code, units - first))
                    else:
                        items.append(Bin(primary, s.code, units))
        else:
            slots = _slots("S", 4, bays=6)
            rng.shuffle(slots)
            for category, count in node.shelf.items():
                pool = [s for s in by_category[category] if s.code not in out and s.code not in scarce
                        and s.weight_g < 4000]
                for s in sorted(rng.sample(pool, count), key=lambda s: s.code):
                    items.append(Bin(slots.pop(), s.code, rng.randint(3, 12)))
        bins[node.code] = tuple(sorted(items, key=lambda b: (b.location, b.sku)))
    return bins, out, scarce


# --- addresses and customers -----------------------------------------------------

@dataclass(frozen=True)
class District:
    province: str
    city: str
    district: str
    postal_code: str
    lat: float
    lon: float
    streets: tuple[str, ...]


SH, HZ = ("上海市", "上海市"), ("浙江省", "杭州市")
DISTRICTS: tuple[District, ...] = (
    District(*SH, "浦东新区", "200120", 31.2335, 121.5055, ("世纪大道", "张杨路", "浦东南路", "东方路", "锦绣路")),
    District(*SH, "浦东新区", "201203", 31.2040, 121.5900, ("祖冲之路", "科苑路", "碧波路", "晨晖路")),
    District(*SH, "黄浦区", "200001", 31.2317, 121.4760, ("南京东路", "西藏中路", "淮海中路", "复兴中路")),
    District(*SH, "静安区", "200040", 31.2286, 121.4480, ("南京西路", "愚园路", "常德路", "延安中路", "北京西路")),
    District(*SH, "徐汇区", "200030", 31.1940, 121.4370, ("漕溪北路", "天钥桥路", "肇嘉浜路", "衡山路")),
    District(*SH, "长宁区", "200050", 31.2200, 121.4240, ("长宁路", "安化路", "延安西路", "江苏路")),
    District(*SH, "普陀区", "200062", 31.2490, 121.4290, ("长寿路", "曹杨路", "中山北路", "武宁路")),
    District(*SH, "杨浦区", "200433", 31.2990, 121.5110, ("国权路", "政通路", "淞沪路", "四平路")),
    District(*SH, "闵行区", "201100", 31.1130, 121.3810, ("沪闵路", "都市路", "七莘路", "莘松路")),
    District(*SH, "宝山区", "201900", 31.4050, 121.4890, ("牡丹江路", "友谊路", "同济路")),
    District(*SH, "松江区", "201620", 31.0320, 121.2270, ("人民北路", "文诚路", "新松江路")),
    District(*HZ, "西湖区", "310012", 30.2740, 120.1290, ("文三路", "天目山路", "教工路", "古墩路", "学院路")),
    District(*HZ, "上城区", "310002", 30.2420, 120.1690, ("解放路", "延安路", "庆春路", "秋涛路")),
    District(*HZ, "拱墅区", "310005", 30.3190, 120.1420, ("莫干山路", "湖墅南路", "大关路", "德胜路")),
    District(*HZ, "滨江区", "310051", 30.2080, 120.2110, ("江南大道", "滨盛路", "江虹路", "网商路")),
    District(*HZ, "余杭区", "311121", 30.2880, 120.0070, ("文一西路", "良睦路", "海曙路")),
    District(*HZ, "萧山区", "311200", 30.1660, 120.2640, ("市心中路", "金城路", "建设一路")),
)
ESTATES = ("阳光花园", "锦绣华庭", "绿洲小区", "春江花苑", "金桥新村", "翠苑", "东方名城", "梧桐公寓", "和平里",
           "紫荆苑", "香樟园", "滨江花园", "天鹅湾", "枫林新村", "云栖公寓", "海棠苑")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁沈任姚卢"
GIVEN = ("小明", "娜", "伟", "芳", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
         "秀英", "华", "慧", "婷", "浩", "宇", "欣怡", "子涵", "梓萱", "一鸣", "思远", "雨桐", "佳怡", "志强", "海燕",
         "建国", "晓东", "文博", "若曦", "嘉豪", "诗涵", "俊杰")
PHONE_PREFIXES = ("134", "135", "136", "137", "138", "139", "150", "151", "152", "158", "159", "177", "186",
                  "187", "188", "189", "199")


def _person(rng: random.Random) -> tuple[str, str]:
    name = rng.choice(SURNAMES) + rng.choice(GIVEN)
    return name, rng.choice(PHONE_PREFIXES) + f"{rng.randint(0, 99_999_999):08d}"


def _address(rng: random.Random, district: District) -> dict[str, Any]:
    line1 = f"{rng.choice(district.streets)}{rng.randint(1, 1800)}号"
    if rng.random() < 0.8:
        line1 += f" {rng.choice(ESTATES)}{rng.randint(1, 24)}号楼{rng.randint(1, 32)}{rng.randint(1, 6):02d}室"
    return {"province": district.province, "city": district.city, "district": district.district,
            "line1": line1, "postal_code": district.postal_code,
            "lat": round(district.lat + rng.uniform(-0.012, 0.012), 5),
            "lon": round(district.lon + rng.uniform(-0.012, 0.012), 5)}


def _node(code: str) -> NodeSpec:
    return next(n for n in NODES if n.code == code)


def _within(address: dict[str, Any], node: NodeSpec, margin: float = 0.5) -> bool:
    return haversine_km(address["lat"], address["lon"], node.lat, node.lon) <= node.same_city_radius_km - margin


# --- orders ------------------------------------------------------------------------

KINDS = ("express", "same_city", "split", "awaiting", "presale")


def order_plan(count: int) -> list[str]:
    """The kind of each of the first `count` orders: most ship whole from one
    node, some need two nodes, a few wait for stock, a couple are presales."""
    awaiting, presale, split = max(1, count // 20), max(1, count // 30), max(1, count // 8)
    same_city = count // 4
    kinds = (["awaiting"] * awaiting + ["presale"] * presale + ["split"] * split + ["same_city"] * same_city)
    kinds = kinds[:count]
    kinds += ["express"] * (count - len(kinds))
    random.Random(SEED + 2).shuffle(kinds)
    return kinds


def stream_kind(rng: random.Random) -> str:
    return rng.choices(KINDS, weights=(60, 25, 8, 2, 5))[0]


def _quantity(rng: random.Random) -> int:
    return rng.choices((1, 2, 3), weights=(75, 18, 7))[0]


def order_request(number: int, kind: str, placed_at: dt.datetime, *, presale_release: dt.datetime | None = None
                  ) -> dict[str, Any]:
    """The body a sales channel would POST for demo order `number`."""
    w = world()
    rng = random.Random(f"{SEED}-order-{number}")
    zone = clock.zone()
    name, phone = _person(rng)
    recipient, recipient_phone = (name, phone) if rng.random() < 0.85 else _person(rng)
    delivery = "same_city" if kind == "same_city" else "express"

    if kind == "same_city":
        store = _node(rng.choices(("SH-JA-S1", "HZ-XH-S1", "HZ-BJ-S1"), weights=(5, 3, 2))[0])
        near = [d for d in DISTRICTS if d.city == store.city
                and haversine_km(d.lat, d.lon, store.lat, store.lon) < store.same_city_radius_km - 2]
        address = _address(rng, rng.choice(near))
        while not _within(address, store):
            address = _address(rng, rng.choice(near))
        picks = rng.sample(w.shelf(store.code), rng.choices((1, 2, 3), weights=(55, 35, 10))[0])
        lines = [{"sku": s, "quantity": 1} for s in picks]
        promised = placed_at + dt.timedelta(hours=rng.choice((2, 2.5, 3, 4)))
    else:
        city = rng.choices(("上海市", "杭州市"), weights=(65, 35))[0]
        address = _address(rng, rng.choice([d for d in DISTRICTS if d.city == city]))
        if kind == "split":
            picks = [rng.choice(w.by_category[FOOD]), rng.choice(w.by_category[DIGITAL])]
            if rng.random() < 0.4:
                picks.append(rng.choice([s for s in w.by_category[DAILY] if s not in picks]))
        else:
            category = rng.choices((DAILY, FOOD, DIGITAL), weights=(45, 40, 15))[0]
            picks = rng.sample(w.by_category[category], rng.choices((1, 2, 3), weights=(60, 28, 12))[0])
        if kind == "awaiting":
            picks = [rng.choice(w.out_of_stock)] + (picks[:1] if rng.random() < 0.5 else [])
        lines = [{"sku": s, "quantity": _quantity(rng)} for s in picks]
        if kind == "presale":
            # Released at midnight the day after tomorrow, unless told otherwise.
            release = presale_release or dt.datetime.combine(
                placed_at.astimezone(zone).date() + dt.timedelta(days=2), dt.time(0, 0), tzinfo=zone)
            lines.insert(0, {"sku": rng.choice(w.presale), "quantity": rng.choice((1, 1, 2)),
                             "presale_release_at": release.astimezone(zone).isoformat()})
            lines = lines[:2]
        # Promised for the next day: by noon or by the evening.
        local = placed_at.astimezone(zone)
        promised = local.replace(hour=rng.choice((12, 18, 18, 21)), minute=0, second=0, microsecond=0) \
            + dt.timedelta(days=1)

    local = placed_at.astimezone(zone)
    promised = promised.astimezone(zone).replace(second=0, microsecond=0)
    if promised.minute not in (0, 30):
        promised = promised.replace(minute=0) + dt.timedelta(hours=1)
    return {
        "external_id": f"TM-{local:%Y%m%d}-{number:06d}",
        "placed_at": local.isoformat(timespec="seconds"),
        "customer": {"name": name, "phone": phone},
        "ship_to": {"name": recipient, "phone": recipient_phone, **address},
        "delivery": delivery,
        "promised_by": promised.isoformat(timespec="seconds"),
        "lines": lines,
    }


# --- loading -----------------------------------------------------------------------

@dataclass
class Loaded:
    created: bool                     # the master data was loaded now (not found already there)
    orders_submitted: int
    tokens: dict[str, str]            # channel -> token, when minted now
    seconds: float


def is_loaded(session: Session) -> bool:
    return (session.scalar(select(Node.id).where(Node.code == MAIN_NODE)) is not None
            and session.scalar(select(Channel.id).where(Channel.name == CHANNEL)) is not None)


def foreign_data(session: Session) -> list[str]:
    """Nodes that are not the demo's, in a database without the demo: someone's real data."""
    demo = {n.code for n in NODES}
    return [c for c in session.scalars(select(Node.code).order_by(Node.code).limit(20)) if c not in demo]


def load(db: Database, orders: int = DEMO_ORDERS, now: dt.datetime | None = None) -> Loaded:
    """Load the demo into `db` (whose schema exists) unless it is there already.

    Master data, users and tokens go in one transaction; then each order is
    its own transaction through `intake.submit`, as the API would. Running it
    again tops the orders up to `orders` and loads nothing twice."""
    started = time.perf_counter()
    tokens: dict[str, str] = {}
    with db.transaction() as session:
        created = not is_loaded(session)
        if created:
            load_master_data(session)
            load_users(session)
            tokens = mint_tokens(session)
    submitted = submit_orders(db, orders, now)
    return Loaded(created, submitted, tokens, time.perf_counter() - started)


def load_master_data(session: Session) -> None:
    w = world()
    for spec in NODES:
        body = masterdata.NodeBody(name=spec.name, kind=spec.kind, province=spec.province, city=spec.city,
                                   lat=spec.lat, lon=spec.lon, daily_capacity=spec.daily_capacity,
                                   same_city_radius_km=spec.same_city_radius_km, active=True)
        masterdata.put_node(session, spec.code, body)
    for s in w.skus:
        masterdata.put_sku(session, s.code, masterdata.SkuBody(name=s.name, barcodes=list(s.barcodes),
                                                               weight_g=s.weight_g, presale=s.presale))
    for spec in NODES:
        node = session.scalar(select(Node).where(Node.code == spec.code))
        items = [masterdata.StockItem(location=b.location, sku=b.sku, on_hand=b.on_hand) for b in w.bins[spec.code]]
        masterdata.count_stock(session, node, masterdata.StockBody(items=items))


def load_users(session: Session) -> None:
    for u in USERS:
        access.create_user(session, u.code, u.name, u.role, u.pin, u.node, u.language)


CARRIER_TOKEN = "carrier:ly-express"


def mint_tokens(session: Session) -> dict[str, str]:
    return {CHANNEL: access.create_token(session, CHANNEL),
            ADMIN_CHANNEL: access.create_token(session, ADMIN_CHANNEL, admin=True),
            CARRIER_TOKEN: access.create_carrier_token(session, "ly-express")}


def _token_kind(name: str) -> str:
    return {ADMIN_CHANNEL: "admin token", CARRIER_TOKEN: "carrier token"}.get(name, "channel token")


def demo_order_count(session: Session) -> int:
    return session.scalar(select(func.count(Order.id)).join(Channel).where(Channel.name == CHANNEL)) or 0


def submit_orders(db: Database, count: int, now: dt.datetime | None = None) -> int:
    """Submit demo orders 1..count that are not there yet, placed over the last
    few hours; the first presale falls due two minutes from now."""
    now = now or dt.datetime.now(dt.timezone.utc)
    with db.reading() as session:
        have = demo_order_count(session)
    kinds = order_plan(count)
    first_presale = kinds.index("presale") + 1 if "presale" in kinds else None
    span = dt.timedelta(hours=3) / max(count, 1)
    jitter = random.Random(SEED + 3)
    offsets = [span * (count - i) - dt.timedelta(seconds=jitter.randint(0, 60)) for i in range(count)]
    for number in range(have + 1, count + 1):
        placed = now - offsets[number - 1]
        release = now + dt.timedelta(minutes=2) if number == first_presale else None
        submit(db, order_request(number, kinds[number - 1], placed, presale_release=release))
    return max(count - have, 0)


def submit(db: Database, body: dict[str, Any]) -> tuple[str, list[tuple[str, str | None, str]]]:
    """POST-equivalent: raw JSON bytes through intake, one transaction (retried on a lost race)."""
    raw = json.dumps(body, ensure_ascii=False).encode()

    def work(session: Session):
        channel = session.scalar(select(Channel).where(Channel.name == CHANNEL))
        order, _ = intake.submit(session, channel, raw)
        session.flush()
        codes = dict(session.execute(select(Node.id, Node.code)).all())
        return order.external_id, [(f.ref, codes.get(f.node_id), f.status.value) for f in order.fulfilments]
    return db.run(work)


# --- describing what is there --------------------------------------------------------

def describe(db: Database) -> dict[str, Any]:
    with db.reading() as s:
        nodes = s.execute(select(Node.city, Node.kind, func.count()).group_by(Node.city, Node.kind)).all()
        orders = dict(s.execute(select(Order.status, func.count()).join(Channel)
                                .where(Channel.name == CHANNEL).group_by(Order.status)).all())
        fulfilments = dict(s.execute(select(Fulfilment.status, func.count()).join(Order).join(Channel)
                                     .where(Channel.name == CHANNEL).group_by(Fulfilment.status)).all())
        live = (select(Fulfilment.order_id, func.count().label("n"))
                .where(Fulfilment.status.not_in([FulfilmentStatus.cancelled, FulfilmentStatus.redispatched,
                                                 FulfilmentStatus.awaiting_release,
                                                 FulfilmentStatus.awaiting_stock]))
                .group_by(Fulfilment.order_id).subquery())
        split = s.execute(select(Order.external_id).join(live, live.c.order_id == Order.id).join(Channel)
                          .where(Channel.name == CHANNEL, live.c.n > 1).order_by(Order.id)).scalars().all()
        first = s.scalar(select(Order.external_id).join(Channel).where(Channel.name == CHANNEL).order_by(Order.id))
        return {
            "nodes": {f"{city} {kind.value}": n for city, kind, n in nodes},
            "skus": s.scalar(select(func.count(Sku.id))),
            "presale_skus": s.scalar(select(func.count(Sku.id)).where(Sku.presale.is_(True))),
            "locations": s.scalar(select(func.count(Location.id))),
            "bins": s.scalar(select(func.count()).select_from(BinStock).where(BinStock.on_hand > 0)),
            "units": s.scalar(select(func.coalesce(func.sum(Stock.on_hand), 0))),
            "users": dict(Counter(r.value for r in s.scalars(select(User.role)))),
            "orders": {k.value: v for k, v in orders.items()},
            "fulfilments": {k.value: v for k, v in fulfilments.items()},
            "split_orders": len(split),
            "example_order": split[0] if split else first,
        }


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(width - _width(text), 0)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(_pad(c, w) for c, w in zip(r, widths)).rstrip() for r in rows]


def banner(url: str, facts: dict[str, Any], tokens: dict[str, str], tokens_new: bool) -> str:
    base = url.rstrip("/")
    nodes = {n.code: n.name for n in NODES}
    out = ["", "luyue (履约) demo", "=" * 60, f"Open   {url}", ""]
    out.append("Loaded: " + ", ".join(f"{n} {k}" for k, n in sorted(facts["nodes"].items())) +
               f"; {facts['skus']} SKUs ({facts['presale_skus']} presale), {facts['locations']} bins, "
               f"{facts['units']} units in stock")
    out.append("Orders (" + CHANNEL + "): " + ", ".join(f"{n} {k}" for k, n in sorted(facts["orders"].items())) +
               f"; {facts['split_orders']} split over two nodes")
    out.append("Fulfilments: " + ", ".join(f"{n} {k}" for k, n in sorted(facts["fulfilments"].items())))
    out += ["", "Logins (badge + PIN on the handheld login):"]
    rows = [["role", "badge", "PIN", "name", "node", "lang"]]
    rows += [[u.role, u.code, u.pin, u.name, f"{u.node} {nodes.get(u.node, '')}" if u.node else "-", u.language]
             for u in USERS]
    out += _table(rows)
    out += ["", "API tokens" + (" (new for this run; earlier ones still work):" if not tokens_new else ":")]
    out += _table([[_token_kind(name), name.removeprefix("carrier:"), tok] for name, tok in tokens.items()])
    token = tokens.get(CHANNEL, "<token>")
    out += ["", "Try:",
            f"  export TOKEN={token}",
            f"  curl -s -H \"Authorization: Bearer $TOKEN\" {base}/api/v1/orders/{facts['example_order']}",
            f"  curl -s -H \"Authorization: Bearer $TOKEN\" '{base}/api/v1/events?after=0&limit=20'",
            "  # once a parcel has shipped, the courier reports it delivered (carrier token):",
            f"  curl -s -H \"Authorization: Bearer {tokens.get(CARRIER_TOKEN, '<carrier token>')}\" "
            f"-H 'Content-Type: application/json' {base}/api/v1/carrier-events -d "
            "'{\"events\": [{\"tracking_number\": \"LY...\", \"status\": \"delivered\", "
            "\"at\": \"2026-11-25T18:00:00+08:00\"}]}'",
            "", f"A new demo order arrives about every {STREAM_SECONDS:.0f} s while the server runs "
                "(Ctrl+C stops it).", "=" * 60, ""]
    return "\n".join(out)


# --- the order stream while serving ------------------------------------------------------

class OrderStream(threading.Thread):
    """A gentle stream of new orders, and presales released when due.
    Bounded (`limit` orders), and gone with the process (daemon; `stop()`)."""

    def __init__(self, app, interval: float = STREAM_SECONDS, limit: int = STREAM_LIMIT):
        super().__init__(name="luyue-demo-orders", daemon=True)
        self.app, self.interval, self.limit = app, interval, limit
        self.db: Database = app.extensions["luyue.db"]
        self.sent = 0
        self._stop_event = threading.Event()
        self._rng = random.Random(SEED + 4)

    def start(self) -> None:
        # The app's logging may leave INFO unshown; the stream's lines are the demo's heartbeat.
        if not log.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
            log.addHandler(handler)
            log.setLevel(logging.INFO)
            log.propagate = False
        super().start()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        with self.app.app_context():
            while not self._stop_event.wait(self.interval * self._rng.uniform(0.75, 1.25)):
                try:
                    self.tick()
                except Exception:  # keep serving; the next tick tries again
                    log.exception("demo order stream: tick failed")

    def tick(self, now: dt.datetime | None = None) -> str | None:
        """Release what is due, then submit the next order (while under the
        limit); returns its external_id."""
        now = now or dt.datetime.now(dt.timezone.utc)
        released = self.db.run(lambda s: intake.release_due(s, now))
        if released:
            log.info("demo: %d presale fulfilment(s) released", released)
        if self.sent >= self.limit:
            return None
        with self.db.reading() as session:
            number = demo_order_count(session) + 1
        for number in range(number, number + 5):
            rng = random.Random(f"{SEED}-stream-{number}")
            kind = stream_kind(rng)
            release = now + dt.timedelta(minutes=rng.randint(1, 3)) if kind == "presale" else None
            try:
                external_id, parts = submit(self.db, order_request(number, kind, now, presale_release=release))
                break
            except Refusal as e:  # someone used this external_id with the demo token: take the next
                if e.key != "external_id_reused":
                    raise
        else:
            return None
        self.sent += 1
        log.info("demo: order %s (%s) -> %s", external_id, kind,
                 ", ".join(f"{ref} {node or '-'} {status}" for ref, node, status in parts))
        return external_id


# --- the command ---------------------------------------------------------------------------

def _reset(db: Database, echo) -> None:
    if db.dialect != "sqlite":
        raise click.UsageError(f"--reset deletes the SQLite demo database; this one is {db.dialect}, "
                               "so it is left alone (empty it yourself if you mean to).")
    path = db.engine.url.database
    if not path or path == ":memory:":
        return
    db.dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)
    echo(f"removed {path}")


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    return f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/"


def use_demo_key(app, echo=click.echo) -> None:
    """Without LUYUE_SECRET_KEY, the demo signs its logins with a random key
    made on its first run and kept in the instance folder."""
    if app.config.get("SECRET_KEY"):
        return
    from app.secret_key import DEMO_KEY_FILE, demo_key
    app.config["SECRET_KEY"] = demo_key(Path(app.instance_path))
    echo(f"secret key: {Path(app.instance_path) / DEMO_KEY_FILE} (made on the first run, kept)")


def run(app, host: str = "127.0.0.1", port: int = 5000, serve: bool = True, reset: bool = False,
        orders: int = DEMO_ORDERS, echo=click.echo) -> Loaded:
    """Create the schema, load the demo unless it is there, print how to use
    it, and serve until interrupted."""
    from app.schema import upgrade

    # The CLI passes `current_app`; the server and the stream thread need the app itself.
    app = app._get_current_object() if hasattr(app, "_get_current_object") else app
    db: Database = app.extensions["luyue.db"]
    use_demo_key(app, echo)
    if reset:
        _reset(db, echo)
    if db.dialect == "sqlite" and db.engine.url.database not in (None, "", ":memory:"):
        Path(db.engine.url.database).parent.mkdir(parents=True, exist_ok=True)
    echo(f"database: {db.engine.url.render_as_string(hide_password=True)}")
    upgrade(db)
    with db.reading() as session:
        loaded_before = is_loaded(session)
        others = [] if loaded_before else foreign_data(session)
    if others:
        raise click.ClickException(
            f"this database already holds other nodes ({', '.join(others)}); the demo wants a database of "
            "its own: point LUYUE_DATABASE_URL at a new SQLite file, or use --reset on a SQLite one.")
    if loaded_before:
        echo("demo data is already loaded; not loading it twice (use --reset to start again)")
    else:
        echo("loading the demo data ...")
    result = load(db, orders=orders)
    if result.created:
        echo(f"loaded in {result.seconds:.1f} s ({result.orders_submitted} orders submitted)")
    elif result.orders_submitted:
        echo(f"{result.orders_submitted} missing demo orders submitted")
    tokens = result.tokens
    if not tokens:
        with db.transaction() as session:
            tokens = mint_tokens(session)
    url = _url(host, port)
    echo(banner(url, describe(db), tokens, tokens_new=result.created))
    if not serve:
        return result

    from werkzeug.serving import run_simple

    from app import scheduler, webhooks
    stream = OrderStream(app)
    stream.start()
    # What `luyue serve` runs beside the requests: time-based jobs, webhooks.
    jobs, sender = scheduler.start(app), webhooks.start(app)
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
    finally:
        jobs.set()
        sender.stop(wait=2)
        stream.stop()
        stream.join(timeout=5)
    return result
