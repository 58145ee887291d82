"""Populate a world from (seed, scale): a few years of an account's history, up to `world.now`.

One `random.Random(seed)` drives everything in a fixed order, so a (seed, scale) pair
always gives the same bytes. Progresses are built straight into the tables (not through
`World.enroll`, whose duplicate check would make a million enrollments quadratic).
"""

from __future__ import annotations

import random
from typing import Any

from skyprep_sandbox.formats import DAY, ts_iso
from skyprep_sandbox.records import payment_record, progress_record, skill_record
from skyprep_sandbox.reports import SAVED_REPORTS, regenerate_saved_report
from skyprep_sandbox.scale import Scale

FIRST_NAMES = [
    "John",
    "James",
    "Mary",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Nancy",
    "Daniel",
    "Lisa",
    "Matthew",
    "Betty",
    "Anthony",
    "Margaret",
    "Mark",
    "Sandra",
    "Donald",
    "Ashley",
    "Steven",
    "Kimberly",
    "Paul",
    "Emily",
    "Andrew",
    "Donna",
    "Joshua",
    "Michelle",
    "Rita",
    "Debra",
    "Dexter",
    "Angel",
    "Vince",
    "Maria",
    "Scottie",
    "Chloé",
    "José",
    "Zoë",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "O'Brien",
    "D'Souza",
    "Smith-Jones",
    "Bennett",
    "Doakes",
    "Morgan",
    "Batista",
    "Lowry",
    "Butler",
    "Jokic",
    "Müller",
]
DEPARTMENTS = (
    "Sales",
    "Marketing",
    "Engineering",
    "R&D",
    "Operations",
    "Finance",
    "Human Resources",
    "Customer Success",
    "Legal",
    "Health & Safety",
)
LOCATIONS = ("New York", "Chicago", "Miami", "Toronto", "London", "Berlin", "Austin", "Denver")
TITLES = (
    "Associate",
    "Senior Associate",
    "Manager",
    "Team Lead",
    "R&D Engineer",
    'Analyst "II"',
    "Director",
    None,
)
COURSE_TOPICS = (
    "Workplace Safety",
    "Health & Safety Basics",
    "Anti-Harassment Training",
    "Data Privacy (GDPR)",
    "Fire Warden",
    "Excel Proficiency",
    "Professional Communication",
    "Customer Service Excellence",
    "Code of Conduct",
    "Information Security",
    "First Aid",
    "Leadership 101",
    "Onboarding: Week One",
    "Manager's Toolkit",
    'The "Five Whys"',
    "Forklift Operation",
    "Diversity & Inclusion",
    "Anti-Bribery",
    "Time Management",
    "Product Knowledge",
)
#: The first two users carry `&` and `"` (so every report CSV shows its escapes).
FIRST_USERS_TITLES = ("R&D Engineer", 'Analyst "II"')
ITEM_TYPES = ("video", "document", "exam", "scorm", "checklist", "webinar")
SKILL_NAMES = (
    "Excel Proficiency",
    "Professional Communication",
    "Word",
    "PowerPoint",
    "Figma",
    "Negotiation",
    "Public Speaking",
    "Safety Awareness",
    "Project Planning",
    "Customer Empathy",
)
PRICES = ("19.99", "49.99", "99.00", "149.50", "250.00")
MATERIAL_TYPES = ("video", "pdf", "scorm", "link", "image", "audio")
USER_ROLES = ("Basic Admin", "Course Editor", "Report Viewer", "Group Manager", "Support Agent")
ILT_STATUSES = ("registered", "attended", "absent", "waitlisted")


def populate(world: Any, scale: Scale) -> None:
    """Fill an empty world with the history of an account of the given scale."""
    rng = random.Random(world.seed)
    now = world.now_ts
    start = now - scale.history_days * DAY

    user_created = _users(world, rng, scale, start, now)
    _courses(world, rng, scale, start, now)
    groups = _user_groups(world, rng, scale, start, now)
    _progresses(world, rng, scale, groups, user_created, now)
    _payments(world, rng, scale, now)
    _skills_and_competencies(world, rng, scale, start, now)
    _learning_paths(world, rng, scale, start, now)
    if scale.settle_required_training:
        _settle_required_training(world, groups, now)
    _instructor_led_trainings(world, rng, scale, start, now)
    _materials(world, rng, scale, start, now)
    _roles_datasets_power_users(world, rng)
    _balances(world, rng)
    world.program.update(
        {
            "id": 4211,
            "created_at": ts_iso(start),
            "time_zone": "Eastern Time (US & Canada)",
            "primary_color": "#1f6fb2",
        }
    )
    for definition in SAVED_REPORTS:
        rid = world.next_id("saved_report")
        created = now - rng.randint(30, 400) * DAY
        regenerate_saved_report(world, rid, definition, created_at=created, at=now - DAY // 2)
    world.changed()


def _users(world: Any, rng: random.Random, scale: Scale, start: int, now: int) -> dict[int, int]:
    """Create the users; returns each one's created_at (epoch seconds)."""
    span = now - start
    created_at: dict[int, int] = {}
    for n in range(scale.users):
        uid = world.next_id("user")
        first = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
        last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
        if n == 0:
            last = "O'Brien"  # every world has the report quirks: &#39; …
        local = f"{first}.{last}".lower().replace("'", "").replace("ü", "u").replace("é", "e")
        local = local.replace("ë", "e")
        email = f"{local}.{uid}@example.com"
        created = start + int(span * n / max(scale.users, 1)) + rng.randrange(3600)
        r = rng.random()
        role = "learner" if r < 0.9 else ("manager" if r < 0.98 else "admin")
        r = rng.random()
        status = "active" if r < 0.85 else ("inactive" if r < 0.95 else "disabled")
        last_login = created + rng.randrange(max(now - created, 1)) if rng.random() < 0.8 else None
        updated = max(created, last_login or created)
        department = DEPARTMENTS[rng.randrange(len(DEPARTMENTS))]
        location = LOCATIONS[rng.randrange(len(LOCATIONS))]
        address = f"{rng.randint(1, 999)} Main Street\n{location}" if rng.random() < 0.1 else None
        if n == 1:
            address = f"1 Harbour Road\n{location}"  # … and a quoted newline
        record_fields: dict[str, Any] = {
            "role": role,
            "status": status,
            "card_no": f"Emp. # {rng.randint(1000000, 9999999)}",
            "title": TITLES[rng.randrange(len(TITLES))] if n > 1 else FIRST_USERS_TITLES[n],
            "cell": f"818-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
            "work_phone": None,
            "address": address,
            "last_login_at": last_login,
            "access_end_date": now + 365 * DAY if rng.random() < 0.05 else None,
            "custom": (
                department,
                location,
                f"E{uid}",
                None if rng.random() < 0.3 else f"{FIRST_NAMES[n % len(FIRST_NAMES)]} {last}",
                None,
            ),
        }
        world.add_user(
            email=email,
            first_name=first,
            last_name=last,
            created_at=created,
            user_id=uid,
            updated_at=updated,
            **record_fields,
        )
        created_at[uid] = created
    return created_at


def _courses(world: Any, rng: random.Random, scale: Scale, start: int, now: int) -> None:
    for n in range(scale.courses):
        topic = COURSE_TOPICS[n % len(COURSE_TOPICS)]
        name = topic if n < len(COURSE_TOPICS) else f"{topic} {n // len(COURSE_TOPICS) + 1}"
        created = start + rng.randrange((now - start) // 2)
        items = [
            {
                "id": world.next_id("material") * 10 + k,
                "name": f"{name}: part {k + 1}",
                "item_type": ITEM_TYPES[rng.randrange(len(ITEM_TYPES))],
            }
            for k in range(rng.randint(3, 6))
        ]
        world.add_course(
            name=name,
            created_at=created,
            updated_at=created + rng.randrange(max(now - created, 1)),
            description=f'{name}: what every employee needs to know.\nRated "essential" by HR.',
            active=(n < 3) or rng.random() < 0.85,
            price=PRICES[rng.randrange(len(PRICES))] if rng.random() < 0.3 else None,
            days_until_expiration=(365 if rng.random() < 0.5 else 730)
            if rng.random() < 0.35 or n == 0
            else None,
            tags=rng.sample(["compliance", "onboarding", "soft-skills", "technical", "annual"], 2),
            course_items=items,
        )


def _user_groups(
    world: Any, rng: random.Random, scale: Scale, start: int, now: int
) -> list[tuple[int, list[int]]]:
    """Groups with members and 1–2 courses; returns (group id, course ids) for enrollment."""
    user_ids = world.users.ids()
    course_ids = world.courses.ids()
    groups = []
    for n in range(scale.user_groups):
        department = DEPARTMENTS[n % len(DEPARTMENTS)]
        location = LOCATIONS[(n // len(DEPARTMENTS)) % len(LOCATIONS)]
        name = f"{department} – {location}" if n >= len(DEPARTMENTS) else department
        if n >= len(DEPARTMENTS) * len(LOCATIONS):
            name = f"{name} {n}"
        size = max(1, int(len(user_ids) * 1.5 / max(scale.user_groups, 1) * rng.uniform(0.5, 1.5)))
        members = rng.sample(user_ids, min(size, len(user_ids)))
        members.sort()
        courses = rng.sample(course_ids, min(len(course_ids), rng.randint(1, 2)))
        gid = world.next_id("user_group")
        created = start + rng.randrange(now - start)
        world.add_user_group(
            name=name,
            description=f"Everyone in {name}",
            created_at=created,
            group_id=gid,
            user_ids=members,
            course_ids=courses,
            enroll_members=False,
        )
        groups.append((gid, courses))
    return groups


def _progresses(
    world: Any,
    rng: random.Random,
    scale: Scale,
    groups: list[tuple[int, list[int]]],
    user_created_at: dict[int, int],
    now: int,
) -> None:
    course_ids = world.courses.ids()
    course_meta = world.courses.meta
    course_created = {cid: _created(world.courses.get(cid)) for cid in course_ids}
    group_courses: dict[int, list[int]] = {}
    for gid, courses in groups:
        for uid in world.group_members[gid]:
            group_courses.setdefault(uid, []).extend(courses)
    mean = scale.enrollments_per_user
    n_courses = len(course_ids)
    rand = rng.random
    put = world._put_progress
    next_id = world.next_id
    for uid, _raw in list(world.users.rows.items()):
        user_created = user_created_at[uid]
        email = world.users.meta[uid][1]
        wanted = min(n_courses, int(rand() * 2 * mean + 0.5))
        chosen = dict.fromkeys(group_courses.get(uid, ()))
        if wanted > len(chosen):
            for cid in rng.sample(course_ids, wanted):
                chosen[cid] = None
                if len(chosen) >= wanted:
                    break
        for cid in chosen:
            name, _active, expiry_days, item_ids = course_meta[cid]
            created = max(user_created, course_created[cid]) + int(rand() * 60 * DAY)
            if created >= now:
                created = now - 1 - int(rand() * 3 * DAY)
            elapsed = now - created
            r = rand()
            if elapsed < 2 * DAY:
                status = "not-started" if r < 0.7 else "in-progress"
            elif r < 0.05:
                status = "not-applicable"
            elif r < 0.50:
                status = "passed"
            elif r < 0.60:
                status = "failed"
            elif r < 0.80:
                status = "in-progress"
            else:
                status = "not-started"
            commencement = completion = expiration = last_item = None
            percent = 0
            if status in ("passed", "failed", "in-progress"):
                commencement = created + int(rand() * min(elapsed, 20 * DAY))
                last_item = item_ids[int(rand() * len(item_ids))] if item_ids else None
                percent = 5 + int(rand() * 90)
            if status in ("passed", "failed") and commencement is not None:
                completion = commencement + int(rand() * (now - commencement))
                percent = 100 if status == "passed" else 50 + int(rand() * 50)
                if status == "passed" and expiry_days:
                    expiration = completion + expiry_days * DAY
            deadline = created + (14, 30, 60, 90)[int(rand() * 4)] * DAY if rand() < 0.5 else None
            updated = max(created, commencement or 0, completion or 0) + int(rand() * 3600)
            updated = min(updated, now - 1)
            pid = next_id("progress")
            # The meta tuple is built here from epochs (World._progress_meta would re-parse).
            meta = (cid, uid, status, expiration if expiration and expiration > now else None)
            put(
                pid,
                progress_record(
                    pid,
                    course_id=cid,
                    course_name=name,
                    user_id=uid,
                    user_email=email,
                    status=status,
                    created_at=created,
                    updated_at=updated,
                    now=now,
                    commencement_date=commencement,
                    completion_date=completion,
                    deadline_date=deadline,
                    expiration_date=expiration,
                    access_date=created if rand() < 0.1 else None,
                    real_start_date=commencement,
                    real_end_date=completion,
                    percent_viewed=percent,
                    last_course_item_id=last_item,
                    override_dates=rand() < 0.03,
                    skip_prerequisites=rand() < 0.02,
                ),
                meta,
            )


def _created(record: dict[str, Any] | None) -> int:
    from skyprep_sandbox.formats import parse_any

    assert record is not None
    return parse_any(record["created_at"]) or 0


def _payments(world: Any, rng: random.Random, scale: Scale, now: int) -> None:
    user_ids = world.users.ids()
    course_ids = world.courses.ids()
    records = []
    for _ in range(scale.payments):
        pid = world.next_id("payment")
        created = now - 1 - int(365 * DAY * rng.random() ** 2)  # skewed to recent: sales grow
        age = now - created
        r = rng.random()
        if age < 3 * DAY and r < 0.4:
            status = "pending"
        elif r < 0.85:
            status = "complete"
        elif r < 0.93:
            status = "refunded"
        else:
            status = "failed"
        uid = user_ids[rng.randrange(len(user_ids))]
        user = world.users.get(uid)
        records.append(
            payment_record(
                pid,
                status=status,
                amount=PRICES[rng.randrange(len(PRICES))],
                first_name=user["first_name"],
                last_name=user["last_name"],
                payer_email=user["email"],
                payment_type="stripe" if rng.random() < 0.6 else "paypal",
                created_at=created,
                updated_at=min(
                    now - 1, created + (rng.randrange(5 * DAY) if status != "pending" else 0)
                ),
                course_id=course_ids[rng.randrange(len(course_ids))],
                user_id=uid,
            )
        )
    world.add_payments(records)


def _skills_and_competencies(
    world: Any, rng: random.Random, scale: Scale, start: int, now: int
) -> None:
    skill_ids = []
    names = []
    for n in range(scale.skills):
        base = SKILL_NAMES[n % len(SKILL_NAMES)]
        name = base if n < len(SKILL_NAMES) else f"{base} {n // len(SKILL_NAMES) + 1}"
        names.append(name)
        skill_ids.append(world.next_id("skill"))
    counts = dict.fromkeys(skill_ids, 0)
    competencies = []
    user_ids = world.users.ids()
    for n in range(scale.competencies):
        cid = world.next_id("competency")
        chosen = rng.sample(range(len(skill_ids)), min(len(skill_ids), rng.randint(1, 3)))
        for k in chosen:
            counts[skill_ids[k]] += 1
        competencies.append((cid, f"Competency {n + 1}", chosen))
    for k, sid in enumerate(skill_ids):
        world.skills.put(
            sid,
            skill_record(
                sid,
                display_name=names[k],
                description=f"Being proficient in {names[k]}",
                competency_count=counts[sid],
            ),
        )
    for cid, name, chosen in competencies:
        skills = []
        for k in chosen:
            skill = world.skills.get(skill_ids[k])
            skill["points"] = 500
            skills.append(skill)
        world.competencies.put(
            cid,
            {
                "display_name": name,
                "name": name.lower(),
                "id": cid,
                "description": f"Holds {', '.join(s['display_name'] for s in skills)}",
                "skills": skills,
            },
        )
        winners = rng.sample(user_ids, min(len(user_ids), rng.randint(0, 5)))
        world.competency_awards[cid] = [
            (uid, start + rng.randrange(now - start)) for uid in sorted(winners)
        ]


def _learning_paths(world: Any, rng: random.Random, scale: Scale, start: int, now: int) -> None:
    course_ids = world.courses.ids()
    group_ids = world.user_groups.ids()
    for n in range(scale.learning_paths):
        lid = world.next_id("learning_path")
        created = start + rng.randrange(now - start)
        world.learning_paths.put(
            lid,
            {
                "id": lid,
                "name": f"Learning Path {n + 1}: {COURSE_TOPICS[n % len(COURSE_TOPICS)]}",
                "description": "A guided sequence of courses",
                "created_at": ts_iso(created),
                "updated_at": ts_iso(created + rng.randrange(now - created)),
                "course_ids": rng.sample(course_ids, min(len(course_ids), 3)),
                "user_group_ids": rng.sample(group_ids, min(len(group_ids), 1)),
            },
        )


# Required training in a real account is mostly done: of the progresses a learner's groups (and
# the learning paths assigned to them) require, these shares are re-drawn as failed, or left
# open (not started / in progress, as generated); the rest are passed, recently enough that
# most certifications are still valid.
REQUIRED_FAILED = 0.015
REQUIRED_OPEN = 0.12  # kept open only when generated open (about 4 in 10 are)
EXPIRED_SHARE = 0.06  # passes of an expiring course completed more than its validity ago


def _settle_required_training(world: Any, groups: list[tuple[int, list[int]]], now: int) -> None:
    """Make the required training of the generated account look like a real account's: most
    learners compliant, a minority overdue, expired or failed (docs/sandbox.md).

    Runs on its own random stream, after everything else is generated from the main one, so
    every table's rows, ids and counts are those the main stream gives; only the status and
    dates of required progresses change (through `World.set_progress_status`, which records
    the dates a real account would)."""
    from skyprep_sandbox.formats import parse_any

    rng = random.Random(f"required-training-{world.seed}")
    required: dict[int, set[int]] = {}
    for gid, courses in groups:
        for uid in world.group_members.get(gid, {}):
            required.setdefault(uid, set()).update(courses)
    for lid in world.learning_paths.ids():
        path = world.learning_paths.get(lid) or {}
        for gid in path.get("user_group_ids", []):
            for uid in world.group_members.get(gid, {}):
                required.setdefault(uid, set()).update(path.get("course_ids", []))
    for uid in sorted(required):
        for pid in list(world.progresses_by_user.get(uid, {})):
            cid, _uid, status, _expiry = world.progresses.meta[pid]
            if cid not in required[uid] or status == "not-applicable":
                continue
            created = parse_any((world.progresses.get(pid) or {})["created_at"]) or now
            if now - created < 2 * DAY:
                continue  # just enrolled: as generated
            expiry_days = world.courses.meta[cid][2]
            q = rng.random()
            if q < REQUIRED_FAILED:
                target, back = "failed", rng.random() * 90 * DAY
            elif q < REQUIRED_OPEN and status in ("not-started", "in-progress"):
                continue
            elif expiry_days:
                target, back = "passed", rng.random() * expiry_days * DAY / (1 - EXPIRED_SHARE)
            else:
                target, back = "passed", rng.random() * 365 * DAY
            at = min(now - 1, max(created + 3600, now - int(back)))
            world.set_progress_status(pid, target, at=at)
            # the now-relative fields (days until the deadline, expired) as of the world's now
            world._update_progress(pid, lambda r: world._refresh_progress_clock(r, now))


def _instructor_led_trainings(
    world: Any, rng: random.Random, scale: Scale, start: int, now: int
) -> None:
    course_ids = world.courses.ids()
    user_ids = world.users.ids()
    for n in range(scale.instructor_led_trainings):
        iid = world.next_id("ilt")
        created = start + rng.randrange(now - start)
        world.ilts.put(
            iid,
            {
                "id": iid,
                "name": f"Classroom: {COURSE_TOPICS[n % len(COURSE_TOPICS)]}",
                "description": "Instructor-led session",
                "course_id": course_ids[rng.randrange(len(course_ids))],
                "created_at": ts_iso(created),
                "updated_at": ts_iso(created),
            },
        )
        for _ in range(2):
            tid = world.next_id("timeslot")
            begins = now + rng.randint(-120, 120) * DAY + 9 * 3600
            world.timeslots.put(
                tid,
                {
                    "id": tid,
                    "instructor_led_training_id": iid,
                    "description": "Morning session",
                    "location": LOCATIONS[rng.randrange(len(LOCATIONS))],
                    "instructor": f"{FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]} Instructor",
                    "start_date": ts_iso(begins),
                    "end_date": ts_iso(begins + 3 * 3600),
                    "display_timezone": "UTC",
                    "capacity": str(rng.choice((10, 20, 30))),
                    "created_at": ts_iso(created),
                    "updated_at": ts_iso(created),
                },
                (iid, begins),
            )
            for uid in rng.sample(user_ids, min(len(user_ids), rng.randint(1, 6))):
                rid = world.next_id("registration")
                status = "attended" if begins < now and rng.random() < 0.8 else "registered"
                world.registrations.put(
                    rid,
                    {
                        "id": rid,
                        "instructor_led_training_timeslot_id": tid,
                        "user_id": uid,
                        "status": status,
                        "created_at": ts_iso(created),
                        "updated_at": ts_iso(created),
                    },
                    tid,
                )


def _materials(world: Any, rng: random.Random, scale: Scale, start: int, now: int) -> None:
    for n in range(scale.materials):
        mid = world.next_id("material")
        created = start + rng.randrange(now - start)
        kind = MATERIAL_TYPES[rng.randrange(len(MATERIAL_TYPES))]
        world.materials.put(
            mid,
            {
                "id": mid,
                "name": f"Material {n + 1} ({kind})",
                "material_type": kind,
                "file_size": rng.randint(10_000, 90_000_000),
                "url": f"https://sandbox.skyprepapp.com/materials/{mid}",
                "created_at": ts_iso(created),
                "updated_at": ts_iso(created),
            },
        )


def _roles_datasets_power_users(world: Any, rng: random.Random) -> None:
    for name in USER_ROLES:
        rid = world.next_id("user_role")
        world.user_roles.put(rid, {"id": rid, "name": name})
    for location in LOCATIONS[:4]:
        did = world.next_id("dataset")
        world.datasets.put(did, {"id": did, "name": f"{location} Location"})
    staff = [uid for uid, meta in world.users.meta.items() if meta[2] in ("manager", "admin")]
    role_ids = world.user_roles.ids()
    dataset_ids = world.datasets.ids()
    for uid in staff[: max(1, min(len(staff), 25))]:
        world.power_users[uid] = {
            "user_role_id": role_ids[rng.randrange(len(role_ids))],
            "dataset_ids": sorted(rng.sample(dataset_ids, rng.randint(1, len(dataset_ids)))),
        }


def _balances(world: Any, rng: random.Random) -> None:
    skill_ids = world.skills.ids()
    for uid in world.users.ids():
        if rng.random() < 0.4:
            world.gamification_balances[uid] = rng.randrange(0, 2000, 10)
        if skill_ids and rng.random() < 0.3:
            chosen = rng.sample(skill_ids, min(len(skill_ids), rng.randint(1, 3)))
            world.skill_balances[uid] = {sid: rng.randrange(100, 3000, 50) for sid in chosen}
