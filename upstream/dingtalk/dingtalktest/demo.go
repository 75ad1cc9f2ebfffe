package dingtalktest

// DemoCorpID is the organisation the demo users belong to.
const DemoCorpID = "ding5f3c8e2a9b7d41c6"

// DemoCorp is the organisation 张三 and 李四 of DemoUsers belong to. Its root
// department (1, named after the organisation) is left implicit.
//
//	示例科技有限公司 (1)
//	├── 研发部 (2)
//	│   └── 后端组 (3)
//	└── 市场部 (4)
func DemoCorp() Corp {
	return Corp{
		CorpID: DemoCorpID,
		Name:   "示例科技有限公司",
		Departments: []Department{
			{ID: 2, Name: "研发部"},
			{ID: 3, Name: "后端组", ParentID: 2},
			{ID: 4, Name: "市场部"},
		},
	}
}

// DemoUsers are three people to log in as in tests and `dingbridge dev`: 张三 has an
// email, 李四 an email and a mobile number, 王五 neither and no organisation.
// 张三 (后端组) and 李四 (研发部 and 市场部) are in DemoCorp's directory.
// None has an avatar URL, so nothing in dev reaches for the internet.
func DemoUsers() []User {
	return []User{
		{
			UnionID:   "kZ3mQpT8vW2xYn4RaiEiE",
			OpenID:    "oP7dK2sLq9XcV5bNmiEiE",
			Nick:      "张三",
			Email:     "zhangsan@example.com",
			CorpID:    DemoCorpID,
			UserID:    "zhangsan",
			DeptIDs:   []int64{3},
			Title:     "后端工程师",
			JobNumber: "A0001",
			OrgEmail:  "zhangsan@corp.example.com",
		},
		{
			UnionID:   "Lx9sVb2Qw7NeR4tYuiEiE",
			OpenID:    "Hq3zWm8Kc1PaD6fGjiEiE",
			Nick:      "李四",
			Email:     "lisi@example.com",
			Mobile:    "13800138000",
			StateCode: "86",
			CorpID:    DemoCorpID,
			UserID:    "lisi",
			DeptIDs:   []int64{2, 4},
			Title:     "产品经理",
			JobNumber: "A0002",
			OrgEmail:  "lisi@corp.example.com",
		},
		{
			UnionID: "Wg5uNn1Jr8TyB2cXoiEiE",
			OpenID:  "Ae4bRt6Yh9MkS3vQpiEiE",
			Nick:    "王五",
		},
	}
}
